package wire

import (
	"errors"
	"strings"
	"testing"
)

var errTest = errors.New("test: bad input")

func TestRoundTrip(t *testing.T) {
	buf := []byte{7}
	buf = AppendBool(buf, true)
	buf = AppendString(buf, "addr")
	buf = AppendBytes(buf, nil)
	buf = AppendBytes(buf, []byte{1, 2})
	d := NewDecoder(buf, errTest)
	d.Version(7)
	if !d.Bool() || d.String() != "addr" || d.Bytes() != nil || string(d.Bytes()) != "\x01\x02" {
		t.Fatalf("decoded wrong values, err %v", d.Err)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

// TestFailuresAreSticky checks each failure names what was wrong, wraps
// the sentinel, and leaves later reads returning zero values.
func TestFailuresAreSticky(t *testing.T) {
	cases := []struct {
		name string
		buf  []byte
		read func(d *Decoder)
		want string
	}{
		{"empty", nil, func(d *Decoder) { d.Version(1) }, "empty"},
		{"version", []byte{2}, func(d *Decoder) { d.Version(1) }, "codec version 2"},
		{"bool", []byte{3}, func(d *Decoder) { d.Bool() }, "bool 3"},
		{"uvarint", []byte{0x80}, func(d *Decoder) { d.Uvarint() }, "bad uvarint"},
		{"string", []byte{5, 'a'}, func(d *Decoder) { _ = d.String() }, "string of 5 bytes with 1 left"},
		{"count", []byte{9, 0, 0}, func(d *Decoder) { d.Count(1) }, "count 9 with 2 bytes left"},
		{"trailing", []byte{0, 0}, func(d *Decoder) { d.Byte() }, "1 trailing bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(c.buf, errTest)
			c.read(&d)
			err := d.Finish()
			if !errors.Is(err, errTest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if d.Uvarint() != 0 || d.String() != "" || d.Err != err {
				t.Fatal("reads after a failure did not return zero values")
			}
		})
	}
}
