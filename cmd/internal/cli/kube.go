package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// addKubeFlags binds kubectl's connection flags (--kubeconfig, --context,
// --cluster, --user, --namespace, --server, ...) to the Factory. Only the
// commands that talk to a cluster have them.
func addKubeFlags(cmd *cobra.Command, f *Factory) {
	fl := cmd.Flags()
	fl.StringVar(&f.kube.rules.ExplicitPath, clientcmd.RecommendedConfigPathFlag, "", "path to the kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
	clientcmd.BindOverrideFlags(f.kube.overrides, fl, clientcmd.RecommendedConfigOverrideFlags(""))
}

// kubeFlagArgs returns the connection flags the user gave, to repeat them
// in a printed recovery command.
func kubeFlagArgs(cmd *cobra.Command) []string {
	var out []string
	for _, name := range []string{clientcmd.RecommendedConfigPathFlag, clientcmd.FlagContext, clientcmd.FlagClusterName, clientcmd.FlagAuthInfoName} {
		if fl := cmd.Flags().Lookup(name); fl != nil && fl.Changed {
			out = append(out, "--"+name+"="+fl.Value.String())
		}
	}
	return out
}

// kubeClients builds the clients of the kubeconfig; they are created only
// when a command needs them.
type kubeClients struct {
	config      *rest.Config
	client      kubernetes.Interface
	dynamic     dynamic.Interface
	clusterName string
}

func (f *Factory) kubeClients() (*kubeClients, error) {
	cc := f.KubeConfig()
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	cfg.UserAgent = "trace-capture/" + f.Version
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create dynamic client: %w", err)
	}
	kc := &kubeClients{config: cfg, client: client, dynamic: dyn}
	if raw, err := cc.RawConfig(); err == nil {
		ctx := raw.CurrentContext
		if f.kube.overrides.CurrentContext != "" {
			ctx = f.kube.overrides.CurrentContext
		}
		if c, ok := raw.Contexts[ctx]; ok {
			kc.clusterName = c.Cluster
		}
	}
	return kc, nil
}
