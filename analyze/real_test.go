package analyze

import (
	"encoding/json"
	"os"
	"testing"
)

func TestRealDump(t *testing.T) {
	recs := loadJSONLines(t, "../testdata/apiserver-etcd.otlp.jsonl.gz")
	res := runRecords(t, Options{}, recs)
	b, _ := json.MarshalIndent(res, "", " ")
	os.WriteFile("/tmp/real.json", b, 0o644)
}
