package nlbatch

import (
	"errors"
	"testing"
)

func TestMessageRoundTrip(t *testing.T) {
	b := NewMessage(0x1234, 0x5).
		Header([]byte{1, 2}).
		U8(1, 7).
		Begin(2|nlaFNested).
		BE16(3|nlaFNetByteOrder, 8080).
		String(4, "rr").
		End().
		U32(5, 0xdeadbeef).
		Bytes()
	if len(b)%4 != 0 {
		t.Fatalf("message length %d is not aligned", len(b))
	}
	msgs, err := ParseMessages(b)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ParseMessages = %v, %v", msgs, err)
	}
	m := msgs[0]
	if m.Header.Type != 0x1234 || m.Header.Flags != 0x5|0x1 || int(m.Header.Len) != len(b) {
		t.Errorf("header = %+v", m.Header)
	}
	attrs, err := ParseAttrs(m.Data[4:]) // after the padded 2-byte fixed header
	if err != nil || len(attrs) != 3 {
		t.Fatalf("ParseAttrs = %v, %v", attrs, err)
	}
	if v, ok := attrs[0].U8(); !ok || v != 7 {
		t.Errorf("attr 1 = %v", attrs[0])
	}
	if attrs[1].Type != 2 || !attrs[1].Nested {
		t.Errorf("attr 2 = %+v, want nested", attrs[1])
	}
	inner, err := ParseAttrs(attrs[1].Value)
	if err != nil || len(inner) != 2 {
		t.Fatalf("nested = %v, %v", inner, err)
	}
	if v, ok := inner[0].BE16(); !ok || v != 8080 || !inner[0].NetByteOrder || inner[0].Type != 3 {
		t.Errorf("port = %+v", inner[0])
	}
	if inner[1].String() != "rr" {
		t.Errorf("string = %q", inner[1].String())
	}
	if v, ok := attrs[2].U32(); !ok || v != 0xdeadbeef {
		t.Errorf("attr 5 = %v", attrs[2])
	}
	if _, ok := attrs[2].U16(); ok {
		t.Error("U16 of a 4-byte attribute must fail")
	}
}

func TestParseRejectsTruncation(t *testing.T) {
	b := NewMessage(1, 0).U32(1, 1).Bytes()
	if _, err := ParseMessages(b[:len(b)-2]); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated message: %v", err)
	}
	if _, err := ParseAttrs([]byte{8, 0, 1, 0, 1}); !errors.Is(err, ErrMalformed) {
		t.Errorf("truncated attribute: %v", err)
	}
	if _, err := ParseAttrs([]byte{8, 0, 1, 0, 1, 2, 3, 4, 0}); !errors.Is(err, ErrMalformed) {
		t.Errorf("trailing byte: %v", err)
	}
}
