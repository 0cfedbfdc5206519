package receiver

import (
	"encoding/json"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Content types of OTLP/HTTP.
const (
	contentTypeProtobuf = "application/x-protobuf"
	contentTypeJSON     = "application/json"
)

// statusProto encodes a google.rpc.Status{code, message}.
func statusProto(code int32, msg string) []byte {
	var b []byte
	if code != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(code)))
	}
	if msg != "" {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, msg)
	}
	return b
}

// statusJSON encodes a google.rpc.Status{code, message} as proto3 JSON.
func statusJSON(code int32, msg string) []byte {
	b, _ := json.Marshal(struct {
		Code    int32  `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	}{code, msg})
	return b
}

// partialSuccessProto encodes an ExportTraceServiceResponse whose
// partial_success rejects n spans with msg. Without rejected spans nor a
// message it is empty: a full success.
func partialSuccessProto(n int64, msg string) []byte {
	if n == 0 && msg == "" {
		return nil
	}
	var ps []byte
	if n != 0 {
		ps = protowire.AppendTag(ps, 1, protowire.VarintType)
		ps = protowire.AppendVarint(ps, uint64(n))
	}
	if msg != "" {
		ps = protowire.AppendTag(ps, 2, protowire.BytesType)
		ps = protowire.AppendString(ps, msg)
	}
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	return protowire.AppendBytes(b, ps)
}

// partialSuccessJSON is partialSuccessProto in proto3 JSON (int64 as a
// string, lowerCamelCase names).
func partialSuccessJSON(n int64, msg string) []byte {
	if n == 0 && msg == "" {
		return []byte("{}")
	}
	type partial struct {
		RejectedSpans string `json:"rejectedSpans,omitempty"`
		ErrorMessage  string `json:"errorMessage,omitempty"`
	}
	p := partial{ErrorMessage: msg}
	if n != 0 {
		p.RejectedSpans = strconv.FormatInt(n, 10)
	}
	b, _ := json.Marshal(struct {
		PartialSuccess partial `json:"partialSuccess"`
	}{p})
	return b
}
