package nlbatch

import (
	"encoding/binary"
	"syscall"

	"golang.org/x/sys/unix"
)

// fakeKernel answers requests the way the kernel does inside sendmsg: an
// ack for each request that asked for one or failed, queued at once, dropped (with ENOBUFS reported once)
// when the queue is full, and every later one dropped too until the queue
// drains (the socket stays congested).
type fakeKernel struct {
	capacity int                   // queued datagrams before overrun; 0: unlimited
	fail     map[int]syscall.Errno // by request number (0-based, over all sends)
	text     map[int]string        // extended-ack message by request number
	silent   map[int]bool          // requests never answered
	reverse  bool                  // queue each window's acks in reverse order
	sendErr  error

	queue     [][]byte
	err       error
	congested bool
	seen      int
	answers   int
	sends     int
	sendSizes []int
	closed    bool
}

func (k *fakeKernel) send(b []byte) error {
	if k.sendErr != nil {
		return k.sendErr
	}
	k.sends++
	k.sendSizes = append(k.sendSizes, len(b))
	msgs, err := ParseMessages(b)
	if err != nil {
		return unix.EINVAL
	}
	var acks [][]byte
	for _, m := range msgs {
		n := k.seen
		k.seen++
		if m.Header.Flags&unix.NLM_F_REQUEST == 0 || (m.Header.Flags&unix.NLM_F_ACK == 0 && k.fail[n] == 0) {
			continue
		}
		if k.silent[n] {
			continue
		}
		k.answers++
		acks = append(acks, ack(m.Header, k.fail[n], k.text[n]))
	}
	if k.reverse {
		for i, j := 0, len(acks)-1; i < j; i, j = i+1, j-1 {
			acks[i], acks[j] = acks[j], acks[i]
		}
	}
	for _, a := range acks {
		k.enqueue(a)
	}
	return nil
}

func (k *fakeKernel) enqueue(b []byte) {
	if k.congested || (k.capacity > 0 && len(k.queue) >= k.capacity) {
		if !k.congested {
			k.err = unix.ENOBUFS
		}
		k.congested = true
		return
	}
	k.queue = append(k.queue, b)
}

func (k *fakeKernel) recv(b []byte, flags int) (int, error) {
	if k.err != nil {
		err := k.err
		k.err = nil
		return 0, err
	}
	if len(k.queue) == 0 {
		return 0, unix.EAGAIN // the timeout, or MSG_DONTWAIT
	}
	d := k.queue[0]
	k.queue = k.queue[1:]
	if len(k.queue) == 0 {
		k.congested = false
	}
	return copy(b, d), nil
}

func (k *fakeKernel) close() error {
	k.closed = true
	return nil
}

// ack builds the kernel's NLMSG_ERROR for a request, as with
// NETLINK_CAP_ACK and NETLINK_EXT_ACK set.
func ack(req unix.NlMsghdr, errno syscall.Errno, text string) []byte {
	flags := uint16(unix.NLM_F_CAPPED)
	body := binary.NativeEndian.AppendUint32(nil, uint32(-int32(errno)))
	body = appendHeader(body, req)
	if text != "" {
		flags |= unix.NLM_F_ACK_TLVS
		m := &Message{}
		m.String(unix.NLMSGERR_ATTR_MSG, text)
		body = append(body, m.buf...)
	}
	return frame(unix.NLMSG_ERROR, flags, req.Seq, body)
}

func appendHeader(b []byte, h unix.NlMsghdr) []byte {
	b = binary.NativeEndian.AppendUint32(b, h.Len)
	b = binary.NativeEndian.AppendUint16(b, h.Type)
	b = binary.NativeEndian.AppendUint16(b, h.Flags)
	b = binary.NativeEndian.AppendUint32(b, h.Seq)
	return binary.NativeEndian.AppendUint32(b, h.Pid)
}

// frame builds one message from the kernel.
func frame(typ, flags uint16, seq uint32, body []byte) []byte {
	b := appendHeader(nil, unix.NlMsghdr{Len: uint32(unix.SizeofNlMsghdr + len(body)), Type: typ, Flags: flags, Seq: seq})
	return append(b, body...)
}
