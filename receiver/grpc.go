package receiver

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // OTLP senders may gzip requests
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/trace-capture/trace-capture/receiver/archive"
)

// traceServiceName is the OTLP TraceService; its one method is Export.
const traceServiceName = "opentelemetry.proto.collector.trace.v1.TraceService"

// rawCodec is the server's codec: it hands the request's bytes to the
// handler as they are, and sends replies that are already encoded. gRPC
// decompresses (within MaxRecvMsgSize) before the codec runs.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	r, ok := v.(*grpcReply)
	if !ok {
		return nil, fmt.Errorf("trace-capture gRPC codec cannot encode %T", v)
	}
	if len(r.b) == 0 {
		return nil, nil
	}
	return mem.BufferSlice{mem.SliceBuffer(r.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r, ok := v.(*request)
	if !ok {
		return fmt.Errorf("trace-capture gRPC codec cannot decode into %T", v)
	}
	n := data.Len()
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	r.buf = r.buf[:n]
	data.CopyTo(r.buf)
	return nil
}

// grpcReply is an encoded ExportTraceServiceResponse.
type grpcReply struct{ b []byte }

// emptyReply is a full success.
var emptyReply = &grpcReply{}

// traceServer is the handler type of the service description.
type traceServer interface {
	export(ctx context.Context, dec func(any) error) (any, error)
}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: traceServiceName,
	HandlerType: (*traceServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			return srv.(traceServer).export(ctx, dec)
		},
	}},
	Streams:  []grpc.StreamDesc{},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

type grpcHandler struct {
	sink    Sink
	counter RefusalCounter
	max     int
}

func newGRPCHandler(sink Sink, maxBytes int) *grpcHandler {
	g := &grpcHandler{sink: sink, max: maxBytes}
	g.counter, _ = sink.(RefusalCounter)
	return g
}

func (g *grpcHandler) export(ctx context.Context, dec func(any) error) (any, error) {
	req := getRequest()
	defer putRequest(req)
	if err := dec(req); err != nil {
		return nil, g.recvError(ctx, err)
	}
	res, err := req.sc.scan(req.buf, make([]Resource, 0, 4))
	if err != nil {
		g.refuse(ctx, ReasonMalformedProtobuf, len(req.buf), err)
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	batch := Batch{Transport: TransportGRPC, Peer: peerAddr(ctx), Resources: res}
	err = g.sink.Consume(ctx, req.buf, batch)
	var partial *PartialSuccessError
	var retry *RetryableError
	switch {
	case err == nil:
		return emptyReply, nil
	case errors.As(err, &partial):
		return &grpcReply{b: partialSuccessProto(partial.RejectedSpans, partial.Message)}, nil
	case errors.As(err, &retry):
		st := status.New(codes.Unavailable, err.Error())
		if retry.RetryAfter > 0 {
			if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retry.RetryAfter)}); derr == nil {
				st = d
			}
		}
		return nil, st.Err()
	case errors.Is(err, archive.ErrRecordTooLarge):
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	default:
		return nil, status.Error(codes.Internal, err.Error())
	}
}

// recvError counts a request that could not be received. gRPC has already
// answered it (ResourceExhausted naming the limit for a request above
// MaxRecvMsgSize, before or after decompression; Internal for a body that
// does not decompress): the error returned does not reach the sender.
func (g *grpcHandler) recvError(ctx context.Context, err error) error {
	st, _ := status.FromError(err)
	switch {
	case st.Code() == codes.ResourceExhausted:
		g.refuse(ctx, ReasonTooLarge, g.max+1, err)
	case st.Code() == codes.Internal && strings.Contains(st.Message(), "decompress"):
		g.refuse(ctx, ReasonDecompression, 0, err)
	default:
		g.refuse(ctx, ReasonReadError, 0, err)
	}
	return err
}

func (g *grpcHandler) refuse(ctx context.Context, reason Reason, size int, err error) {
	if g.counter != nil {
		g.counter.CountRefusal(Refusal{Reason: reason, Transport: TransportGRPC, Peer: peerAddr(ctx), Bytes: size, Err: err})
	}
}

// unknownService answers calls of other services (OTLP metrics or logs sent
// to the traces endpoint, say).
func (g *grpcHandler) unknownService(_ any, stream grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(stream)
	err := status.Errorf(codes.Unimplemented, "method %s is not served: trace-capture receives OTLP traces only (%s/Export)", method, traceServiceName)
	g.refuse(stream.Context(), ReasonWrongPath, 0, err)
	return err
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}
