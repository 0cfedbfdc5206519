package receiver

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func TestScanRealData(t *testing.T) {
	total := 0
	for i, req := range realRequests(t) {
		want, err := pdataResources(req)
		if err != nil {
			t.Fatalf("request %d: pdata: %v", i, err)
		}
		got, err := Scan(req, nil)
		if err != nil {
			t.Fatalf("request %d: Scan: %v", i, err)
		}
		if !sameResources(got, want) {
			t.Fatalf("request %d: Scan found %+v, pdata %+v", i, got, want)
		}
		sum := 0
		for _, r := range got {
			total += r.Spans
			sum += r.Bytes
		}
		if sum > len(req) || sum == 0 {
			t.Errorf("request %d: resource bytes %d of a %d-byte request", i, sum, len(req))
		}
	}
	if total != 10949+9516 {
		t.Errorf("Scan counted %d spans in the real captures, want %d", total, 10949+9516)
	}
}

// Small hand-built wire messages.
func field(num protowire.Number, payload ...[]byte) []byte {
	var p []byte
	for _, x := range payload {
		p = append(p, x...)
	}
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return protowire.AppendBytes(b, p)
}

func vfield(num protowire.Number, v uint64) []byte {
	b := protowire.AppendTag(nil, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func str(num protowire.Number, s string) []byte { return field(num, []byte(s)) }

func attr(key string, value []byte) []byte { return field(1, str(1, key), field(2, value)) }

func strValue(s string) []byte { return str(1, s) }

func spanMsg(extra ...[]byte) []byte {
	id16 := make([]byte, 16)
	id16[0] = 1
	id8 := make([]byte, 8)
	id8[0] = 2
	return field(2, append([][]byte{field(1, id16), field(2, id8), str(5, "op")}, extra...)...)
}

func TestScanEdgeCases(t *testing.T) {
	svc := func(name string) []byte { return attr("service.name", strValue(name)) }
	tests := []struct {
		name    string
		req     []byte
		want    []Resource // nil with wantErr
		wantErr bool
	}{
		{"empty request", nil, nil, false},
		{"one span", field(1, field(1, svc("a")), field(2, spanMsg())), []Resource{{Service: "a", Spans: 1}}, false},
		{"first service.name wins", field(1, field(1, svc("a"), svc("b"), attr("host.name", strValue("h")))), []Resource{{Service: "a", Host: "h"}}, false},
		{"non-string service.name", field(1, field(1, attr("service.name", vfield(3, 7)), svc("b"))), []Resource{{}}, false},
		{"last value of the attribute wins", field(1, field(1, field(1, str(1, "service.name"), field(2, strValue("x")), field(2, vfield(3, 1))))), []Resource{{}}, false},
		{"resource fields merge", field(1, field(1, attr("host.name", strValue("h"))), field(1, svc("s"))), []Resource{{Service: "s", Host: "h"}}, false},
		{"deprecated scope spans", field(1, field(1000, spanMsg(), spanMsg())), []Resource{{Spans: 2}}, false},
		{"deprecated ignored beside scope spans", field(1, field(2), field(1000, spanMsg())), []Resource{{}}, false},
		{"unknown fields skipped", append(field(1, field(2, spanMsg(vfield(99, 5)))), vfield(7, 1)...), []Resource{{Spans: 1}}, false},
		{"empty ids", field(1, field(2, field(2, field(1), field(2)))), []Resource{{Spans: 1}}, false},
		{"short trace id", field(1, field(2, field(2, field(1, []byte{1, 2, 3})))), nil, true},
		{"wrong wire type", field(1, vfield(2, 1)), nil, true},
		{"truncated", field(1, field(2, spanMsg()))[:20], nil, true},
		{"field zero", []byte{0x00}, nil, true},
		{"end group alone", []byte{0x0c}, nil, true},
		{"empty group", []byte{0x13, 0x14, 0x10, 0x01}, nil, false},
		{"group at the end", []byte{0x13, 0x14}, nil, true},
		{"group of a known field", []byte{0x0b, 0x0c}, nil, true},
		{"group with a varint", []byte{0x13, 0x08, 0x01, 0x14}, nil, true},
		{"truncated resource attribute", field(1, field(1, []byte{0x0a, 0x09, 0x0a})), nil, true},
		{"truncated entity ref", field(1, field(1, []byte{0x1a, 0x09, 0x0a})), nil, true},
		{"bad attribute value", field(1, field(1, field(1, str(1, "k"), field(2, vfield(1, 5))))), nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Scan(tc.req, nil)
			want, perr := pdataResources(tc.req)
			if (err != nil) != (perr != nil) {
				t.Fatalf("Scan error %v, pdata error %v: they must agree", err, perr)
			}
			if tc.wantErr {
				if err == nil {
					t.Fatalf("Scan accepted %x", tc.req)
				}
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("error %v does not match ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			if !sameResources(got, tc.want) || !sameResources(got, want) {
				t.Errorf("Scan found %+v, want %+v (pdata %+v)", got, tc.want, want)
			}
		})
	}
}

func TestScanNesting(t *testing.T) {
	// An attribute value nested n arrays deep.
	nested := func(n int) []byte {
		v := strValue("leaf")
		for range n {
			v = field(5, field(1, v))
		}
		return field(1, field(1, attr("k", v)))
	}
	for _, n := range []int{10, 48, 49, 50, 98, 200} {
		req := nested(n)
		_, err := Scan(req, nil)
		_, perr := pdataResources(req)
		if (err != nil) != (perr != nil) {
			t.Errorf("depth %d: Scan error %v, pdata error %v", n, err, perr)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, req := range seedRequests(f) {
		f.Add(req)
	}
	f.Add(field(1, field(1, attr("service.name", strValue("a"))), field(1000, spanMsg())))
	f.Add([]byte{0x13, 0x14})
	f.Fuzz(func(t *testing.T, req []byte) {
		got, err := Scan(req, nil)
		want, perr := pdataResources(req)
		if (err != nil) != (perr != nil) {
			t.Fatalf("Scan error %v, pdata error %v", err, perr)
		}
		if err == nil && !sameResources(got, want) {
			t.Fatalf("Scan found %+v, pdata %+v", got, want)
		}
	})
}
