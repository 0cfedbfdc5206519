package redact

import "testing"

func BenchmarkRewrite(b *testing.B) {
	recs := readRecords(b, realCaptures[0])
	w, _ := NewRecordRewriter(Options{Key: testKey})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, r := range recs {
			if _, err := w.Rewrite(r); err != nil {
				b.Fatal(err)
			}
		}
	}
}
