package capture

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/trace-capture/trace-capture/receiver/archive/bundle"
	"github.com/trace-capture/trace-capture/receiver/archive/otlpfile"
)

// ExportOptions configures Export: either a file format written to Out,
// or a replay to an OTLP endpoint.
type ExportOptions struct {
	// Input is a bundle or any trace file Import accepts.
	Input string
	// Format is otlpfile.FormatJSON or otlpfile.FormatProto, written to Out.
	Format otlpfile.Format
	Out    io.Writer
	// Endpoint, when set, replays the spans to this OTLP/gRPC host:port
	// (or OTLP/HTTP base URL or host:port with HTTP) instead of writing.
	Endpoint string
	HTTP     bool
	// Timeout bounds each request of a replay (default 30s).
	Timeout time.Duration
}

// ExportResult counts what Export wrote or sent.
type ExportResult struct {
	Records int64
	Spans   int64
	// Rejected counts spans a replay target refused (partial success).
	Rejected int64
}

// Export writes every span of the input out again: byte-identical records
// in protobuf, the same content in OTLP JSON, or sent to an OTLP endpoint.
func Export(ctx context.Context, opts ExportOptions) (*ExportResult, error) {
	var send func(ctx context.Context, rec []byte) (rejected int64, err error)
	var finish func() error
	switch {
	case opts.Endpoint != "" && opts.HTTP:
		send, finish = httpReplayer(opts)
	case opts.Endpoint != "":
		s, f, err := grpcReplayer(opts)
		if err != nil {
			return nil, err
		}
		send, finish = s, f
	default:
		if opts.Out == nil {
			return nil, errors.New("export: no output")
		}
		w, err := otlpfile.NewWriter(opts.Out, opts.Format)
		if err != nil {
			return nil, err
		}
		send = func(_ context.Context, rec []byte) (int64, error) { return 0, w.Write(rec) }
		finish = w.Flush
	}
	res := &ExportResult{}
	var unm ptrace.ProtoUnmarshaler
	_, err := bundle.WalkPath(opts.Input, bundle.Limits{}, bundle.WalkFuncs{
		Record: func(_ string, rec []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			td, err := unm.UnmarshalTraces(rec)
			if err != nil {
				return fmt.Errorf("decode record %d: %w", res.Records+1, err)
			}
			rejected, err := send(ctx, rec)
			if err != nil {
				return fmt.Errorf("export record %d: %w", res.Records+1, err)
			}
			res.Records++
			res.Spans += int64(td.SpanCount())
			res.Rejected += rejected
			return nil
		},
	})
	err = errors.Join(err, finish())
	if err != nil {
		return res, err
	}
	return res, nil
}

func grpcReplayer(opts ExportOptions) (func(context.Context, []byte) (int64, error), func() error, error) {
	cc, err := grpc.NewClient(opts.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(1<<30)))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", opts.Endpoint, err)
	}
	client := ptraceotlp.NewGRPCClient(cc)
	timeout := orDefault(opts.Timeout, 30*time.Second)
	send := func(ctx context.Context, rec []byte) (int64, error) {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(rec); err != nil {
			return 0, err
		}
		for attempt := 0; ; attempt++ {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			resp, err := client.Export(rctx, req, grpc.WaitForReady(attempt == 0))
			cancel()
			if err == nil {
				return resp.PartialSuccess().RejectedSpans(), nil
			}
			code := status.Code(err)
			if attempt >= 5 || (code != codes.Unavailable && code != codes.ResourceExhausted && code != codes.Aborted) {
				return 0, fmt.Errorf("send to %s: %w", opts.Endpoint, err)
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return 0, err
			}
		}
	}
	return send, cc.Close, nil
}

func httpReplayer(opts ExportOptions) (func(context.Context, []byte) (int64, error), func() error) {
	url := opts.Endpoint
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	if !strings.HasSuffix(url, "/v1/traces") {
		url = strings.TrimSuffix(url, "/") + "/v1/traces"
	}
	client := &http.Client{Timeout: orDefault(opts.Timeout, 30*time.Second)}
	send := func(ctx context.Context, rec []byte) (int64, error) {
		for attempt := 0; ; attempt++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(rec))
			if err != nil {
				return 0, err
			}
			req.Header.Set("Content-Type", "application/x-protobuf")
			resp, err := client.Do(req)
			if err != nil {
				return 0, fmt.Errorf("send to %s: %w", url, err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				out := ptraceotlp.NewExportResponse()
				if err := out.UnmarshalProto(body); err != nil {
					return 0, nil // a 200 without a parsable body accepted everything
				}
				return out.PartialSuccess().RejectedSpans(), nil
			case attempt < 5 && (resp.StatusCode == 429 || resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504):
				wait := backoff(attempt)
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 && s < 60 {
					wait = time.Duration(s) * time.Second
				}
				if err := sleep(ctx, wait); err != nil {
					return 0, err
				}
			default:
				return 0, fmt.Errorf("send to %s: HTTP %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
			}
		}
	}
	return send, func() error { return nil }
}

func backoff(attempt int) time.Duration {
	return time.Duration(1<<attempt) * 200 * time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
