// Package yamlerr words the errors of gopkg.in/yaml.v3 for the people who
// wrote the file: the Go types they were decoded into are not named.
package yamlerr

import (
	"errors"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// inType is the part of a TypeError's message that names a Go type:
// "field retry not found in type runbook.fileStep", "cannot unmarshal
// !!str `x` into int".
var inType = regexp.MustCompile(` in type [\w.*\[\]]+`)

// Clean returns err with its messages free of Go type names; an error
// that is not a *yaml.TypeError comes back as it was.
func Clean(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		msgs[i] = inType.ReplaceAllString(m, "")
	}
	return errors.New(strings.Join(msgs, "; "))
}
