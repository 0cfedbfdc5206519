package analyze

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestSchemaDoc checks that docs/report-json.md documents every JSON field
// of Result and every warning code.
func TestSchemaDoc(t *testing.T) {
	b, err := os.ReadFile("../docs/report-json.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(ty reflect.Type) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		if !strings.Contains(doc, "### "+ty.Name()+"\n") {
			t.Errorf("docs/report-json.md has no section for %s", ty.Name())
		}
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if name != "" && !strings.Contains(doc, "`"+name+"`") {
				t.Errorf("docs/report-json.md does not document %s.%s (%q)", ty.Name(), f.Name, name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(Result{}))
	for _, code := range []string{WarnBadRecords, WarnInputError, WarnDuplicateSpans, WarnConflictingSpans, WarnOrphanSpans,
		WarnInvalidSpans, WarnInvalidTimes, WarnBrokenPropagation, WarnSourceSilent, WarnDroppedSpans, WarnClockSkew,
		WarnClockSkewCapped, WarnLongLived, WarnUntrustedLinks, WarnOverflowingSpans, WarnTruncatedTables, WarnNoSpans,
		WarnUnknownServiceName, WarnLoneAuthentication} {
		if !strings.Contains(doc, "`"+code+"`") {
			t.Errorf("warning code %q is not documented", code)
		}
	}
}
