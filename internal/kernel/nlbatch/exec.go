package nlbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrAckLost is wrapped by the error of a request whose acknowledgement never
// arrived (receive buffer overrun, or nothing within the ack timeout). The
// request may or may not have been applied: the caller must re-read.
var ErrAckLost = errors.New("netlink acknowledgement lost: the request may or may not have been applied")

// Error is a kernel error that came with an extended-ack message, such as
// "Attribute failed policy validation". errors.Is(err, unix.EINVAL) and
// errors.As(err, &syscall.Errno) see its Errno.
type Error struct {
	Errno syscall.Errno
	Msg   string
}

// Error returns "errno text: kernel message".
func (e *Error) Error() string { return e.Errno.Error() + ": " + e.Msg }

// Unwrap returns the errno.
func (e *Error) Unwrap() error { return e.Errno }

// Exec sends reqs, each a complete netlink request message (see Message), in
// windows of up to Window requests per sendmsg, and returns one error per
// request: nil for a success, the kernel's syscall.Errno (or an *Error
// carrying it with the kernel's message) for a failure, an error wrapping
// ErrAckLost when the outcome is unknown. Every request is tried; a failure
// does not stop the ones after it. Exec sets each message's sequence
// number, port id 0 and NLM_F_REQUEST in its own copy, and asks for an
// acknowledgement (NLM_F_ACK) on the last request of each window only: the
// kernel answers a failed request whether asked or not, and processes a
// sendmsg's requests in order before it returns, so the last request's
// acknowledgement says that every request before it without an answer
// succeeded. A window then costs one sendmsg and a recvmsg per failure
// plus one, instead of one per request (the kernel allocates no ack for the
// others either). reqs are not modified.
func (s *Socket) Exec(reqs [][]byte) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(reqs))
	var batch []byte
	for i := 0; i < len(reqs); {
		batch = batch[:0]
		first := s.seq + 1
		var idx []int // positions in reqs of this window's requests, in seq order
		var lastFlags int
		j := i
		for ; j < len(reqs) && len(idx) < s.window; j++ {
			r := reqs[j]
			if err := checkRequest(r); err != nil {
				errs[j] = err
				continue
			}
			if len(idx) > 0 && len(batch)+align4(len(r)) > s.maxSend {
				break
			}
			s.seq++
			lastFlags = len(batch) + 6
			batch = append(batch, r...)
			h := batch[lastFlags-6:]
			binary.NativeEndian.PutUint32(h[0:4], uint32(len(r)))
			flags := binary.NativeEndian.Uint16(h[6:8])&^unix.NLM_F_ACK | unix.NLM_F_REQUEST
			binary.NativeEndian.PutUint16(h[6:8], flags)
			binary.NativeEndian.PutUint32(h[8:12], s.seq)
			binary.NativeEndian.PutUint32(h[12:16], 0)
			for len(batch)%4 != 0 {
				batch = append(batch, 0)
			}
			idx = append(idx, j)
		}
		i = j
		if len(idx) > 0 {
			flags := binary.NativeEndian.Uint16(batch[lastFlags:lastFlags+2]) | unix.NLM_F_ACK
			binary.NativeEndian.PutUint16(batch[lastFlags:lastFlags+2], flags)
			s.runWindow(batch, first, idx, errs)
		}
	}
	return errs
}

func checkRequest(r []byte) error {
	if len(r) < unix.SizeofNlMsghdr {
		return fmt.Errorf("%w: request of %d bytes is shorter than a netlink header", ErrMalformed, len(r))
	}
	if l := binary.NativeEndian.Uint32(r[0:4]); int(l) != len(r) {
		return fmt.Errorf("%w: request header says %d bytes, request has %d", ErrMalformed, l, len(r))
	}
	return nil
}

// runWindow sends one window and collects the kernel's answers into errs:
// the failures, then the acknowledgement of the last request. Answers still
// queued after that are read without waiting.
func (s *Socket) runWindow(batch []byte, first uint32, idx []int, errs []error) {
	if err := s.c.send(batch); err != nil {
		// netlink_sendmsg fails before the kernel sees any message.
		for _, j := range idx {
			errs[j] = os.NewSyscallError("sendmsg", err)
		}
		return
	}
	answered := make([]bool, len(idx))
	var lost error
	overrun, last := false, false
	flags := 0
	for {
		n, err := s.c.recv(s.buf, flags)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			// Answers were dropped. All surviving ones are queued already
			// (the kernel answered inside sendmsg): drain without waiting.
			overrun = true
			lost = fmt.Errorf("%w: receive buffer overrun: %w", ErrAckLost, unix.ENOBUFS)
			flags = unix.MSG_DONTWAIT
			continue
		case errors.Is(err, unix.EAGAIN):
			if lost == nil && !last {
				lost = fmt.Errorf("%w: none before the ack timeout", ErrAckLost)
			}
		case err != nil:
			lost = fmt.Errorf("%w: %w", ErrAckLost, os.NewSyscallError("recvmsg", err))
		case n > len(s.buf):
			lost = fmt.Errorf("%w: %w: datagram of %d bytes truncated", ErrAckLost, ErrMalformed, n)
			continue
		}
		if err != nil {
			break
		}
		msgs, perr := ParseMessages(s.buf[:n])
		if perr != nil {
			lost = fmt.Errorf("%w: %w", ErrAckLost, perr)
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR {
				continue // a reply before its ack; Exec has no use for it
			}
			k := m.Header.Seq - first
			if k >= uint32(len(idx)) || answered[k] {
				continue // a late answer from an earlier window
			}
			answered[k] = true
			errs[idx[k]] = decodeAck(m)
			if int(k) == len(idx)-1 {
				last = true
				flags = unix.MSG_DONTWAIT
			}
		}
	}
	if last && !overrun {
		return // every request without an answer succeeded
	}
	for k, j := range idx {
		if !answered[k] {
			errs[j] = lost
		}
	}
	if overrun && s.window > 1 {
		s.window /= 2
	}
}

// decodeAck turns an NLMSG_ERROR (or a dump's NLMSG_DONE) message into nil
// (success), a syscall.Errno, or an *Error when the kernel attached an
// extended-ack message.
func decodeAck(m Msg) error {
	if len(m.Data) < 4 {
		return fmt.Errorf("%w: ack of %d bytes", ErrMalformed, len(m.Data))
	}
	code := int32(binary.NativeEndian.Uint32(m.Data[0:4]))
	if code == 0 {
		return nil
	}
	if code < 0 {
		code = -code
	}
	errno := syscall.Errno(code)
	if m.Header.Flags&unix.NLM_F_ACK_TLVS == 0 {
		return errno
	}
	// After the error code of an NLMSG_ERROR: the request's header (all of
	// the request unless NLM_F_CAPPED), then the extended-ack attributes.
	// An NLMSG_DONE has the attributes right after the code.
	rest := m.Data[4:]
	skip := 0
	if m.Header.Type == unix.NLMSG_ERROR {
		if len(rest) < unix.SizeofNlMsghdr {
			return errno
		}
		skip = unix.SizeofNlMsghdr
		if m.Header.Flags&unix.NLM_F_CAPPED == 0 {
			skip = align4(int(binary.NativeEndian.Uint32(rest[0:4])))
		}
		if skip > len(rest) {
			return errno
		}
	}
	attrs, err := ParseAttrs(rest[skip:])
	if err != nil {
		return errno
	}
	for _, a := range attrs {
		if a.Type == unix.NLMSGERR_ATTR_MSG {
			if msg := a.String(); msg != "" {
				return &Error{Errno: errno, Msg: msg}
			}
		}
	}
	return errno
}
