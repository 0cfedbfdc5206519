package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzControlRequests feeds arbitrary bodies to the control API's request decoding and checks:
// never a panic; a request that decodes and validates encodes back to one that does too.
func FuzzControlRequests(f *testing.F) {
	for _, s := range []string{
		`{"runID":"run-1","components":["kubelet","etcd"],"samplingRatePerMillion":1000000,"versions":{"kubelet":"1.37.2"}}`,
		`{"runID":"run-1","components":["crio"],"deadlineIn":"10m"}`,
		`{"in":"10m"}`, `{"in":600000000000}`, `{"in":"-1s"}`, `{"force":true,"reason":"x"}`, `{}`, `[]`, `null`,
		`{"runID":"A B"}`, `{"components":["nope"]}`, `{"versions":{"kubelet":"x"}}`, `{"unknown":1}`, "\x00\xff",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		decode := func(v any) bool {
			rec := httptest.NewRecorder()
			ok := readJSON(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), v)
			if !ok && rec.Code != http.StatusBadRequest {
				t.Fatalf("refused with HTTP %d", rec.Code)
			}
			return ok
		}
		var er EnableRequest
		if decode(&er) && er.Validate() == nil {
			var back EnableRequest
			b, err := json.Marshal(er)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			if !readJSON(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(b))), &back) || back.Validate() != nil {
				t.Fatalf("%s does not decode back: %s", b, rec.Body.String())
			}
		}
		var dr DeadlineRequest
		decode(&dr)
		var rr RestoreRequest
		decode(&rr)
	})
}
