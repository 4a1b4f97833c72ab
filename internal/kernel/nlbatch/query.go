package nlbatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrDumpInterrupted is returned by Query when the kernel flagged the dump
// NLM_F_DUMP_INTR: the table changed while it was read, so the result may
// miss or repeat objects. The caller retries; it must not prune from it.
var ErrDumpInterrupted = errors.New("netlink dump interrupted by a concurrent change")

// Query sends one request and passes each reply message to fn, until the
// kernel is done: NLMSG_DONE after a dump (a request with NLM_F_DUMP), or the
// acknowledgement of any other request (for which Query sets NLM_F_ACK).
// It returns the kernel's error as Exec does, else fn's first error, else
// ErrDumpInterrupted if the kernel flagged the dump. Replies are always read
// to the end, so the socket stays usable. The Data passed to fn is only valid
// during the call.
func (s *Socket) Query(req []byte, fn func(Msg) error) error {
	if err := checkRequest(req); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()

	msg := append([]byte(nil), req...)
	flags := binary.NativeEndian.Uint16(msg[6:8]) | unix.NLM_F_REQUEST
	dump := flags&unix.NLM_F_DUMP != 0
	if !dump {
		flags |= unix.NLM_F_ACK
	}
	s.seq++
	seq := s.seq
	binary.NativeEndian.PutUint16(msg[6:8], flags)
	binary.NativeEndian.PutUint32(msg[8:12], seq)
	binary.NativeEndian.PutUint32(msg[12:16], 0)
	if err := s.c.send(msg); err != nil {
		return os.NewSyscallError("sendmsg", err)
	}

	var fnErr, lostErr error
	interrupted := false
	for {
		n, err := s.c.recv(s.buf, 0)
		switch {
		case errors.Is(err, unix.ENOBUFS):
			// Part of the reply was dropped; read on to its end.
			lostErr = fmt.Errorf("netlink reply lost: receive buffer overrun: %w", unix.ENOBUFS)
			continue
		case errors.Is(err, unix.EAGAIN):
			return fmt.Errorf("%w: no reply before the timeout", ErrAckLost)
		case err != nil:
			return os.NewSyscallError("recvmsg", err)
		case n > len(s.buf):
			lostErr = fmt.Errorf("%w: datagram of %d bytes truncated", ErrMalformed, n)
			continue
		}
		msgs, err := ParseMessages(s.buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue // a late ack of an earlier request
			}
			if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
				interrupted = true
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if err := decodeAck(m); err != nil {
					return err
				}
				return firstErr(lostErr, fnErr, interrupted)
			case unix.NLMSG_DONE:
				// A dump's end carries its error code, if any.
				if len(m.Data) >= 4 {
					if err := decodeAck(m); err != nil {
						return err
					}
				}
				return firstErr(lostErr, fnErr, interrupted)
			case unix.NLMSG_NOOP, unix.NLMSG_OVERRUN:
				continue
			}
			if fnErr == nil {
				fnErr = fn(m)
			}
		}
	}
}

func firstErr(lost, fn error, interrupted bool) error {
	switch {
	case lost != nil:
		return lost
	case fn != nil:
		return fn
	case interrupted:
		return ErrDumpInterrupted
	}
	return nil
}
