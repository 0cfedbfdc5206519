package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/trace-capture/trace-capture/capture/redact"
)

// RedactOptions are the flags of `trace-capture redact`, also used by
// `record --redact`.
type RedactOptions struct {
	IO *Streams

	Input        string
	Output       string
	PolicyFile   string
	MappingFile  string
	KeyFile      string
	PrintDefault bool
}

// NewCmdRedact returns `trace-capture redact`.
func NewCmdRedact(f *Factory, runF func(context.Context, *RedactOptions) error) *cobra.Command {
	opts := &RedactOptions{IO: f.IO}
	cmd := &cobra.Command{
		Use:   "redact BUNDLE -o CLEAN.tgz",
		Short: "Pseudonymise names, addresses and secrets in a bundle before it leaves the machine",
		Long: `Write a copy of a bundle in which namespace, object, user, host and pod names,
IP addresses, e-mail addresses, URLs' query strings and similar values are
replaced by consistent tokens (the same name always gives the same token, so
the analysis — edges, paths, percentiles — is unchanged), and secrets (bearer
tokens, passwords, JWTs) are masked. Structure is never touched: ids, times,
service names, route templates, RPC methods, verbs and resource types stay.

The token → original mapping is written only to --mapping (mode 0600), which
you keep; the bundle's manifest gets a redaction report without originals.
--key-file makes tokens consistent across bundles (at least 16 bytes).
The default policy is printed by --print-default-policy; --policy FILE adds to
it (see docs/redaction.md).
` + exitStatusHelp,
		Example: `  trace-capture redact bundle.tgz -o clean.tgz
  trace-capture redact bundle.tgz -o clean.tgz --policy my-policy.yaml --key-file team.key`,
		Args: func(cmd *cobra.Command, args []string) error {
			if opts.PrintDefault {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.PrintDefault {
				_, err := f.IO.Out.Write(redact.DefaultPolicyYAML())
				return err
			}
			opts.Input = args[0]
			if opts.Output == "" {
				return flagErrorf("`--output` is required")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return opts.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Output, "output", "o", "", "redacted bundle to write")
	opts.addFlags(cmd)
	fl.BoolVar(&opts.PrintDefault, "print-default-policy", false, "print the default policy and exit")
	return cmd
}

func (o *RedactOptions) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&o.PolicyFile, "policy", "", "redaction policy file (YAML or JSON), merged onto the default")
	fl.StringVar(&o.MappingFile, "mapping", "", "where to keep the token → original mapping (default: OUTPUT.mapping.json)")
	fl.StringVar(&o.KeyFile, "key-file", "", "key for consistent tokens across bundles (default: a random key per run)")
}

// Run redacts Input into Output.
func (o *RedactOptions) Run(ctx context.Context) error {
	if o.Input == o.Output {
		return flagErrorf("`--output` must differ from the input")
	}
	ropts := redact.Options{MappingFile: o.MappingFile}
	if ropts.MappingFile == "" {
		ropts.MappingFile = o.Output + ".mapping.json"
	}
	if o.PolicyFile != "" {
		p, err := redact.LoadPolicy(o.PolicyFile)
		if err != nil {
			return err
		}
		ropts.Policy = p
	}
	if o.KeyFile != "" {
		k, err := redact.LoadKey(o.KeyFile)
		if err != nil {
			return err
		}
		ropts.Key = k
	} else if _, err := os.Stat(ropts.MappingFile); err == nil {
		return fmt.Errorf("mapping file %s exists and was made with another key: pass `--key-file` with that key, or `--mapping` with a new path", ropts.MappingFile)
	}
	rep, err := redact.Bundle(ctx, o.Input, o.Output, ropts)
	if err != nil {
		return err
	}
	kinds := make([]string, 0, len(rep.Replaced))
	for k := range rep.Replaced {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(o.IO.Out, "redacted bundle: %s (%d spans)\nmapping (keep it, do not share it): %s\n", o.Output, rep.Spans, ropts.MappingFile)
	for _, k := range kinds {
		fmt.Fprintf(o.IO.Out, "  %-16s %8d replaced, %6d distinct\n", k, rep.Replaced[k], rep.Distinct[k])
	}
	return nil
}

// redactInPlace redacts a freshly written bundle at path: the clear copy
// is replaced by the redacted one.
func (o *RedactOptions) redactInPlace(ctx context.Context, path string) error {
	clear := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".clear")
	if err := os.Rename(path, clear); err != nil {
		return fmt.Errorf("redact %s: %w", path, err)
	}
	o.Input, o.Output = clear, path
	if o.MappingFile == "" {
		o.MappingFile = path + ".mapping.json"
	}
	err := o.Run(ctx)
	if err != nil {
		// Keep the clear bundle where the user expects one rather than lose it.
		return errors.Join(err, os.Rename(clear, path), fmt.Errorf("the bundle at %s is NOT redacted", path))
	}
	return os.Remove(clear)
}
