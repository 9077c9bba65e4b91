package yamlerr

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestClean(t *testing.T) {
	type inner struct {
		N int `yaml:"n"`
	}
	var v struct {
		Steps []inner `yaml:"steps"`
	}
	dec := yaml.NewDecoder(strings.NewReader("steps:\n  - n: 1\n    retry: 2\n  - n: x\n"))
	dec.KnownFields(true)
	err := Clean(dec.Decode(&v))
	want := "line 3: field retry not found; line 4: cannot unmarshal !!str `x` into int"
	if err == nil || err.Error() != want {
		t.Fatalf("Clean: %v, want %q", err, want)
	}
	other := errors.New("yaml: line 1: did not find expected key")
	if Clean(other) != other {
		t.Fatal("Clean changed an error that is not a TypeError")
	}
}
