package nlbatch

import (
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// Attribute type flags (include/uapi/linux/netlink.h). Kernels set them on
// some attributes (ipset marks nested and network-order ones); ParseAttrs
// strips them from Attr.Type and reports them separately.
const (
	nlaFNested       = 0x8000
	nlaFNetByteOrder = 0x4000
	nlaTypeMask      = ^uint16(nlaFNested | nlaFNetByteOrder)
)

// Message builds one netlink request: the netlink header, the subsystem's
// fixed header (genlmsghdr, nfgenmsg, ifaddrmsg) and attributes. Exec and
// Query fill in the sequence number and the port id; the length is set by
// Bytes.
type Message struct {
	buf  []byte
	nest []int
}

// NewMessage starts a request of the given type; NLM_F_REQUEST is always set.
func NewMessage(typ, flags uint16) *Message {
	m := &Message{buf: make([]byte, unix.SizeofNlMsghdr, 128)}
	binary.NativeEndian.PutUint16(m.buf[4:6], typ)
	binary.NativeEndian.PutUint16(m.buf[6:8], flags|unix.NLM_F_REQUEST)
	return m
}

// Header appends a fixed header (for example a genlmsghdr), padded to 4 bytes.
func (m *Message) Header(b []byte) *Message {
	m.buf = append(m.buf, b...)
	m.pad()
	return m
}

// Attr appends an attribute with a raw value.
func (m *Message) Attr(typ uint16, value []byte) *Message {
	l := unix.SizeofRtAttr + len(value)
	m.buf = binary.NativeEndian.AppendUint16(m.buf, uint16(l))
	m.buf = binary.NativeEndian.AppendUint16(m.buf, typ)
	m.buf = append(m.buf, value...)
	m.pad()
	return m
}

// U8 appends a one-byte attribute.
func (m *Message) U8(typ uint16, v uint8) *Message { return m.Attr(typ, []byte{v}) }

// U16 appends a host-order 16-bit attribute.
func (m *Message) U16(typ uint16, v uint16) *Message {
	return m.Attr(typ, binary.NativeEndian.AppendUint16(nil, v))
}

// U32 appends a host-order 32-bit attribute.
func (m *Message) U32(typ uint16, v uint32) *Message {
	return m.Attr(typ, binary.NativeEndian.AppendUint32(nil, v))
}

// BE16 appends a network-order 16-bit attribute (ports).
func (m *Message) BE16(typ uint16, v uint16) *Message {
	return m.Attr(typ, binary.BigEndian.AppendUint16(nil, v))
}

// BE32 appends a network-order 32-bit attribute.
func (m *Message) BE32(typ uint16, v uint32) *Message {
	return m.Attr(typ, binary.BigEndian.AppendUint32(nil, v))
}

// String appends a NUL-terminated string attribute.
func (m *Message) String(typ uint16, s string) *Message {
	return m.Attr(typ, append([]byte(s), 0))
}

// Begin opens a nested attribute; End closes the innermost open one. The
// caller passes NLA_F_NESTED in typ where the subsystem expects it (ipset
// does, IPVS does not).
func (m *Message) Begin(typ uint16) *Message {
	m.nest = append(m.nest, len(m.buf))
	m.buf = binary.NativeEndian.AppendUint16(m.buf, 0)
	m.buf = binary.NativeEndian.AppendUint16(m.buf, typ)
	return m
}

// End closes the innermost nested attribute opened by Begin.
func (m *Message) End() *Message {
	start := m.nest[len(m.nest)-1]
	m.nest = m.nest[:len(m.nest)-1]
	binary.NativeEndian.PutUint16(m.buf[start:], uint16(len(m.buf)-start))
	return m
}

// Bytes returns the finished message with its length set. It panics if a
// nested attribute is still open: that is a bug in the encoder.
func (m *Message) Bytes() []byte {
	if len(m.nest) != 0 {
		panic("nlbatch: Message.Bytes with an open nested attribute")
	}
	binary.NativeEndian.PutUint32(m.buf[0:4], uint32(len(m.buf)))
	return m.buf
}

func (m *Message) pad() {
	for len(m.buf)%4 != 0 {
		m.buf = append(m.buf, 0)
	}
}

// Attr is one parsed netlink attribute.
type Attr struct {
	// Type is the attribute type without the NLA_F_NESTED and
	// NLA_F_NET_BYTEORDER flags.
	Type uint16
	// Nested and NetByteOrder report those flags.
	Nested, NetByteOrder bool
	Value                []byte
}

// U8 returns a one-byte value; ok is false if the attribute has another size.
func (a Attr) U8() (v uint8, ok bool) {
	if len(a.Value) != 1 {
		return 0, false
	}
	return a.Value[0], true
}

// U16 returns a host-order 16-bit value.
func (a Attr) U16() (v uint16, ok bool) {
	if len(a.Value) != 2 {
		return 0, false
	}
	return binary.NativeEndian.Uint16(a.Value), true
}

// U32 returns a host-order 32-bit value.
func (a Attr) U32() (v uint32, ok bool) {
	if len(a.Value) != 4 {
		return 0, false
	}
	return binary.NativeEndian.Uint32(a.Value), true
}

// BE16 returns a network-order 16-bit value.
func (a Attr) BE16() (v uint16, ok bool) {
	if len(a.Value) != 2 {
		return 0, false
	}
	return binary.BigEndian.Uint16(a.Value), true
}

// BE32 returns a network-order 32-bit value.
func (a Attr) BE32() (v uint32, ok bool) {
	if len(a.Value) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(a.Value), true
}

// String returns a string value without its NUL terminator.
func (a Attr) String() string {
	v := a.Value
	for i, c := range v {
		if c == 0 {
			return string(v[:i])
		}
	}
	return string(v)
}

// ErrMalformed is wrapped by every parse error: the kernel's bytes did not
// have the netlink framing they claim.
var ErrMalformed = errors.New("malformed netlink data")

// ParseAttrs splits b into attributes. Trailing bytes shorter than an
// attribute header are an error, as is an attribute running past b.
func ParseAttrs(b []byte) ([]Attr, error) {
	var attrs []Attr
	for len(b) > 0 {
		if len(b) < unix.SizeofRtAttr {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
		}
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4])
		if l < unix.SizeofRtAttr || l > len(b) {
			return nil, fmt.Errorf("%w: attribute %d of length %d in %d bytes", ErrMalformed, typ&nlaTypeMask, l, len(b))
		}
		attrs = append(attrs, Attr{
			Type:         typ & nlaTypeMask,
			Nested:       typ&nlaFNested != 0,
			NetByteOrder: typ&nlaFNetByteOrder != 0,
			Value:        b[unix.SizeofRtAttr:l],
		})
		b = b[min(align4(l), len(b)):]
	}
	return attrs, nil
}

// Msg is one received netlink message: its header and the bytes after it.
type Msg struct {
	Header unix.NlMsghdr
	Data   []byte
}

// ParseMessages splits a datagram into netlink messages.
func ParseMessages(b []byte) ([]Msg, error) {
	var msgs []Msg
	for len(b) > 0 {
		if len(b) < unix.SizeofNlMsghdr {
			return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
		}
		h := unix.NlMsghdr{
			Len:   binary.NativeEndian.Uint32(b[0:4]),
			Type:  binary.NativeEndian.Uint16(b[4:6]),
			Flags: binary.NativeEndian.Uint16(b[6:8]),
			Seq:   binary.NativeEndian.Uint32(b[8:12]),
			Pid:   binary.NativeEndian.Uint32(b[12:16]),
		}
		if int(h.Len) < unix.SizeofNlMsghdr || int(h.Len) > len(b) {
			return nil, fmt.Errorf("%w: message of length %d in %d bytes", ErrMalformed, h.Len, len(b))
		}
		msgs = append(msgs, Msg{Header: h, Data: b[unix.SizeofNlMsghdr:h.Len]})
		b = b[min(align4(int(h.Len)), len(b)):]
	}
	return msgs, nil
}

func align4(n int) int { return (n + 3) &^ 3 }
