package nlbatch

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// dumpKernel answers a dump with the given bodies, then NLMSG_DONE.
type dumpKernel struct {
	fakeKernel
	bodies   [][]byte
	flags    uint16 // extra flags on the data messages
	doneCode int32
	gotFlags uint16
}

func (k *dumpKernel) send(b []byte) error {
	msgs, err := ParseMessages(b)
	if err != nil || len(msgs) != 1 {
		return unix.EINVAL
	}
	h := msgs[0].Header
	k.gotFlags = h.Flags
	// Two data messages per datagram, as the kernel packs a dump skb.
	var dgram []byte
	for i, body := range k.bodies {
		dgram = append(dgram, frame(0x20, unix.NLM_F_MULTI|k.flags, h.Seq, body)...)
		if i%2 == 1 {
			k.queue = append(k.queue, dgram)
			dgram = nil
		}
	}
	done := frame(unix.NLMSG_DONE, unix.NLM_F_MULTI, h.Seq, binary.NativeEndian.AppendUint32(nil, uint32(-k.doneCode)))
	k.queue = append(k.queue, append(dgram, done...))
	return nil
}

func TestQueryDump(t *testing.T) {
	k := &dumpKernel{bodies: [][]byte{{1, 0, 0, 0}, {2, 0, 0, 0}, {3, 0, 0, 0}}}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	var got []byte
	err := s.Query(NewMessage(0x20, unix.NLM_F_DUMP).Bytes(), func(m Msg) error {
		got = append(got, m.Data[0])
		return nil
	})
	if err != nil || string(got) != "\x01\x02\x03" {
		t.Errorf("Query = %v, %v", got, err)
	}
	if k.gotFlags&unix.NLM_F_ACK != 0 {
		t.Error("a dump request must not ask for an ack")
	}
}

func TestQueryDumpInterrupted(t *testing.T) {
	k := &dumpKernel{bodies: [][]byte{{1, 0, 0, 0}}, flags: unix.NLM_F_DUMP_INTR}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	err := s.Query(NewMessage(0x20, unix.NLM_F_DUMP).Bytes(), func(Msg) error { return nil })
	if !errors.Is(err, ErrDumpInterrupted) {
		t.Errorf("Query = %v, want ErrDumpInterrupted", err)
	}
}

func TestQueryDumpError(t *testing.T) {
	k := &dumpKernel{doneCode: int32(unix.EBUSY)}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	err := s.Query(NewMessage(0x20, unix.NLM_F_DUMP).Bytes(), func(Msg) error { return nil })
	if !errors.Is(err, unix.EBUSY) {
		t.Errorf("Query = %v, want EBUSY", err)
	}
}

func TestQueryCallbackErrorDrainsReplies(t *testing.T) {
	k := &dumpKernel{bodies: [][]byte{{1, 0, 0, 0}, {2, 0, 0, 0}, {3, 0, 0, 0}}}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	stop := errors.New("stop")
	calls := 0
	err := s.Query(NewMessage(0x20, unix.NLM_F_DUMP).Bytes(), func(Msg) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Query = %v after %d calls, want stop after 1", err, calls)
	}
	if len(k.queue) != 0 {
		t.Errorf("%d datagrams left unread", len(k.queue))
	}
}

func TestQueryRequestWithReply(t *testing.T) {
	k := &fakeKernel{}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	// The kernel's reply; the fake queues the ack after it on send.
	k.queue = append(k.queue, frame(0x20, 0, s.seq+1, []byte{7, 0, 0, 0}))
	var got []byte
	err := s.Query(NewMessage(0x20, 0).Bytes(), func(m Msg) error {
		got = append(got, m.Data...)
		return nil
	})
	if err != nil || len(got) != 4 || got[0] != 7 {
		t.Errorf("Query = %v, %v", got, err)
	}
	if len(k.queue) != 0 {
		t.Errorf("%d datagrams left unread", len(k.queue))
	}
}
