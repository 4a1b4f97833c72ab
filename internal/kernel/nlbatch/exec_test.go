package nlbatch

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const bigBuffer = 1 << 24

func requests(n int) [][]byte {
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = NewMessage(0x20, 0).Header([]byte{9, 1, 0, 0}).U32(1, uint32(i)).Bytes()
	}
	return reqs
}

func TestExecMatchesAcksBySequence(t *testing.T) {
	k := &fakeKernel{
		reverse: true,
		fail:    map[int]syscall.Errno{3: unix.EEXIST, 7: unix.ENOENT},
		text:    map[int]string{7: "Unknown set"},
	}
	s := newSocket(k, 4, bigBuffer, bigBuffer)
	errs := s.Exec(requests(10))

	if k.sends != 3 {
		t.Errorf("sends = %d, want 3 (windows of 4)", k.sends)
	}
	for i, err := range errs {
		switch i {
		case 3:
			if !errors.Is(err, unix.EEXIST) {
				t.Errorf("errs[3] = %v, want EEXIST as a bare syscall.Errno", err)
			}
		case 7:
			var e *Error
			if !errors.Is(err, unix.ENOENT) || !errors.As(err, &e) || e.Msg != "Unknown set" {
				t.Errorf("errs[7] = %#v, want ENOENT with the kernel's message", err)
			}
			if err.Error() != "no such file or directory: Unknown set" {
				t.Errorf("errs[7] text = %q", err.Error())
			}
		default:
			if err != nil {
				t.Errorf("errs[%d] = %v, want nil", i, err)
			}
		}
	}
}

// Only the last request of a window asks for an ack; failures are answered
// anyway.
func TestExecAsksOneAckPerWindow(t *testing.T) {
	k := &fakeKernel{fail: map[int]syscall.Errno{1: unix.EEXIST}}
	s := newSocket(k, 4, bigBuffer, bigBuffer)
	errs := s.Exec(requests(8))
	if !errors.Is(errs[1], unix.EEXIST) {
		t.Errorf("errs[1] = %v, want EEXIST", errs[1])
	}
	for i, err := range errs {
		if i != 1 && err != nil {
			t.Errorf("errs[%d] = %v", i, err)
		}
	}
	if k.answers != 3 {
		t.Errorf("the kernel answered %d times, want 3: the last of each window of 4 and the failure", k.answers)
	}
}

func TestExecOverrunReportsLostAcks(t *testing.T) {
	// Every request fails; the queue holds 5 answers.
	fail := map[int]syscall.Errno{}
	for i := range 8 {
		fail[i] = unix.EEXIST
	}
	k := &fakeKernel{capacity: 5, fail: fail}
	s := newSocket(k, 8, bigBuffer, bigBuffer)
	errs := s.Exec(requests(8))
	for i, err := range errs {
		switch {
		case i < 5 && !errors.Is(err, unix.EEXIST):
			t.Errorf("errs[%d] = %v, want EEXIST (its answer was queued)", i, err)
		case i >= 5 && (!errors.Is(err, ErrAckLost) || !errors.Is(err, unix.ENOBUFS)):
			t.Errorf("errs[%d] = %v, want ErrAckLost wrapping ENOBUFS", i, err)
		}
	}
	if w := s.Window(); w != 4 {
		t.Errorf("window after overrun = %d, want 4", w)
	}
	// The socket is usable afterwards, with the smaller window.
	k.capacity, k.fail = 0, nil
	for i, err := range s.Exec(requests(6)) {
		if err != nil {
			t.Errorf("after overrun: errs[%d] = %v", i, err)
		}
	}
	if k.sends != 3 {
		t.Errorf("sends = %d, want 1 + 2", k.sends)
	}
}

func TestExecMissingAckTimesOut(t *testing.T) {
	k := &fakeKernel{silent: map[int]bool{2: true}, fail: map[int]syscall.Errno{0: unix.EEXIST}}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	errs := s.Exec(requests(3))
	if !errors.Is(errs[0], unix.EEXIST) {
		t.Errorf("errs[0] = %v, want the failure that was answered", errs[0])
	}
	for _, err := range errs[1:] {
		if !errors.Is(err, ErrAckLost) || errors.Is(err, unix.ENOBUFS) {
			t.Errorf("errs = %v: without the last ack, the unanswered ones are unknown (ErrAckLost without ENOBUFS)", errs)
		}
	}
	if s.Window() != DefaultWindow {
		t.Errorf("window = %d: a timeout must not shrink it", s.Window())
	}
}

func TestExecIgnoresStaleAcksAndReplies(t *testing.T) {
	k := &fakeKernel{}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	// A late ack from before (an earlier, older seq) and a reply message
	// with a current seq must not count as acknowledgements.
	k.queue = append(k.queue,
		ack(unix.NlMsghdr{Seq: s.seq - 5}, unix.EPERM, ""),
		frame(0x20, 0, s.seq+1, []byte{1, 2, 3, 4}),
	)
	errs := s.Exec(requests(2))
	for i, err := range errs {
		if err != nil {
			t.Errorf("errs[%d] = %v", i, err)
		}
	}
}

func TestExecBoundsWindowBySendBuffer(t *testing.T) {
	k := &fakeKernel{}
	reqs := requests(10)
	size := len(reqs[0])
	s := newSocket(k, 0, 3*size+32, bigBuffer) // room for 3 requests per sendmsg
	for i, err := range s.Exec(reqs) {
		if err != nil {
			t.Errorf("errs[%d] = %v", i, err)
		}
	}
	if k.sends != 4 {
		t.Errorf("sends = %d (%v), want 4", k.sends, k.sendSizes)
	}
}

func TestWindowBoundedByReceiveBuffer(t *testing.T) {
	s := newSocket(&fakeKernel{}, 1024, bigBuffer, 100*ackBudget)
	if s.Window() != 100 {
		t.Errorf("window = %d, want 100 (what the receive buffer holds)", s.Window())
	}
}

func TestExecSendFailureFailsItsWindow(t *testing.T) {
	k := &fakeKernel{sendErr: unix.EPERM}
	s := newSocket(k, 2, bigBuffer, bigBuffer)
	for i, err := range s.Exec(requests(3)) {
		if !errors.Is(err, unix.EPERM) {
			t.Errorf("errs[%d] = %v, want EPERM", i, err)
		}
	}
}

func TestExecRejectsMalformedRequestOnly(t *testing.T) {
	k := &fakeKernel{}
	s := newSocket(k, 0, bigBuffer, bigBuffer)
	reqs := requests(3)
	reqs[1] = reqs[1][:len(reqs[1])-4] // header length no longer matches
	errs := s.Exec(reqs)
	if errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrMalformed) {
		t.Errorf("errs = %v, want only errs[1] ErrMalformed", errs)
	}
	if k.seen != 2 {
		t.Errorf("kernel saw %d requests, want 2", k.seen)
	}
}

func TestExecDoesNotModifyRequests(t *testing.T) {
	s := newSocket(&fakeKernel{}, 0, bigBuffer, bigBuffer)
	reqs := requests(2)
	before := string(reqs[0])
	s.Exec(reqs)
	if string(reqs[0]) != before {
		t.Error("Exec modified the caller's request")
	}
}

func TestDecodeAckUncapped(t *testing.T) {
	// Without NLM_F_CAPPED the whole request is echoed before the TLVs.
	req := requests(1)[0]
	body := []byte{0xef, 0xff, 0xff, 0xff} // -17, EEXIST
	body = append(body, req...)
	m := &Message{}
	m.String(unix.NLMSGERR_ATTR_MSG, "exists")
	body = append(body, m.buf...)
	msgs, err := ParseMessages(frame(unix.NLMSG_ERROR, unix.NLM_F_ACK_TLVS, 1, body))
	if err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := decodeAck(msgs[0]); !errors.As(err, &e) || e.Errno != unix.EEXIST || e.Msg != "exists" {
		t.Errorf("decodeAck = %#v", err)
	}
}
