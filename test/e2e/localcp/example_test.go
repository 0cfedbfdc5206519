package localcp_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/trace-capture/trace-capture/test/e2e/load"
	"github.com/trace-capture/trace-capture/test/e2e/localcp"
)

// Start a control plane with tracing flags, drive load, then restart both
// components without the flags, as a capture's restore does. (No Output
// comment: the example needs the real binaries, so it is compiled, not run.)
func ExampleStart() {
	ctx := context.Background()
	cp, err := localcp.Start(ctx, localcp.Options{
		EtcdBinary:      "/root/.cache/trace-capture/bin/etcd-v3.6.16-go1.26.8",
		APIServerBinary: "/root/.cache/trace-capture/bin/kube-apiserver-v1.37.2-go1.26.8",
		EtcdArgs:        []string{"--enable-distributed-tracing=true", "--distributed-tracing-address=127.0.0.1:4317"},
		APIServerArgs:   []string{"--tracing-config-file=/tmp/tracing.yaml"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer cp.Stop(context.WithoutCancel(ctx))

	res, err := load.Run(ctx, load.Options{Admin: cp.AdminConfig(), User: cp.UserConfig(), Duration: 20 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Requests, "requests")

	if err := cp.RestartAPIServer(ctx, nil); err != nil {
		log.Fatal(err)
	}
	if err := cp.RestartEtcd(ctx, nil); err != nil {
		log.Fatal(err)
	}
}
