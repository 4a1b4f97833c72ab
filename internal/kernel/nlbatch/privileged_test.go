//go:build linux && privileged

package nlbatch

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"

	"github.com/ipvs-proxy/ipvs-proxy/internal/kernel/nlbatch/nstest"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { nstest.Main(m) }

// ipsetAdd encodes `ipset add SET ADDR` (hash:ip, IPv4) as the ipset tool
// does, without -exist (NLM_F_EXCL).
func ipsetAdd(set string, addr netip.Addr) []byte {
	ip := addr.As4()
	return NewMessage(unix.NFNL_SUBSYS_IPSET<<8|nl.IPSET_CMD_ADD, unix.NLM_F_EXCL).
		Header([]byte{unix.AF_INET, 0, 0, 0}). // nfgenmsg
		U8(nl.IPSET_ATTR_PROTOCOL, nl.IPSET_PROTOCOL).
		String(nl.IPSET_ATTR_SETNAME, set).
		Begin(nl.IPSET_ATTR_DATA|nlaFNested).
		Begin(nl.IPSET_ATTR_IP|nlaFNested).
		Attr(nl.IPSET_ATTR_IPADDR_IPV4|nlaFNetByteOrder, ip[:]).
		End().
		End().
		Bytes()
}

func nthAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestPrivilegedIpsetBatchPartialFailure(t *testing.T) {
	const set, n, bad = "nlbatch-test", 5000, 2500
	if err := netlink.IpsetCreate(set, "hash:ip", netlink.IpsetCreateOptions{MaxElements: 1 << 20}); err != nil {
		t.Fatalf("create set: %v", err)
	}
	defer netlink.IpsetDestroy(set)

	s, err := Open(Config{Protocol: unix.NETLINK_NETFILTER})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("window %d requests", s.Window())

	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = ipsetAdd(set, nthAddr(i))
	}
	reqs[bad] = ipsetAdd("no-such-set", nthAddr(bad))
	reqs[bad+1] = ipsetAdd(set, nthAddr(0)) // a duplicate: IPSET_ERR_EXIST
	errs := s.Exec(reqs)

	failed := 0
	for i, err := range errs {
		switch i {
		case bad:
			if !errors.Is(err, unix.ENOENT) {
				t.Errorf("add to a missing set: %v, want ENOENT", err)
			}
		case bad + 1:
			if !errors.Is(err, syscall.Errno(nl.IPSET_ERR_EXIST)) {
				t.Errorf("duplicate add: %v, want errno %d (IPSET_ERR_EXIST)", err, nl.IPSET_ERR_EXIST)
			}
		default:
			if err != nil {
				failed++
				if failed < 5 {
					t.Errorf("errs[%d] = %v", i, err)
				}
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d requests failed that should not have", failed)
	}
	res, err := netlink.IpsetList(set)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(res.Entries); got != n-2 {
		t.Errorf("set has %d members, want %d", got, n-2)
	}
}

func TestPrivilegedSmallReceiveBufferNeverLosesAcks(t *testing.T) {
	const set, n = "nlbatch-small", 3000
	if err := netlink.IpsetCreate(set, "hash:ip", netlink.IpsetCreateOptions{}); err != nil {
		t.Fatalf("create set: %v", err)
	}
	defer netlink.IpsetDestroy(set)

	// A window far larger than a 64 KiB buffer holds: the window must be cut
	// to fit, so that no ack is dropped.
	s, err := Open(Config{Protocol: unix.NETLINK_NETFILTER, Window: 4096, BufferBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("window %d requests", s.Window())
	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = ipsetAdd("no-such-set", nthAddr(i)) // every ack is an error ack
	}
	for i, err := range s.Exec(reqs) {
		if !errors.Is(err, unix.ENOENT) {
			t.Fatalf("errs[%d] = %v, want ENOENT", i, err)
		}
	}
}

// A window whose failures outgrow the receive buffer: the kernel drops
// answers and says ENOBUFS; the requests without one are reported lost.
func TestPrivilegedOverrunIsReported(t *testing.T) {
	const set, n = "nlbatch-overrun", 2000
	if err := netlink.IpsetCreate(set, "hash:ip", netlink.IpsetCreateOptions{}); err != nil {
		t.Fatalf("create set: %v", err)
	}
	defer netlink.IpsetDestroy(set)

	s, err := Open(Config{Protocol: unix.NETLINK_NETFILTER, BufferBytes: 32 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.window = n // past what the buffer holds, to provoke the kernel's ENOBUFS

	reqs := make([][]byte, n)
	for i := range reqs {
		reqs[i] = ipsetAdd("no-such-set", nthAddr(i)) // every request fails and is answered
	}
	errs := s.Exec(reqs)
	answered, lost := 0, 0
	for i, err := range errs {
		switch {
		case errors.Is(err, unix.ENOENT):
			answered++
		case errors.Is(err, ErrAckLost) && errors.Is(err, unix.ENOBUFS):
			lost++
		default:
			t.Errorf("errs[%d] = %v", i, err)
		}
	}
	t.Logf("answered %d, lost %d, window now %d", answered, lost, s.Window())
	if lost == 0 || answered == 0 {
		t.Error("the test did not provoke an overrun")
	}
	if s.Window() >= n {
		t.Errorf("window %d after an overrun, want it smaller", s.Window())
	}
	// The socket recovers.
	if errs := s.Exec([][]byte{ipsetAdd(set, nthAddr(n))}); errs[0] != nil {
		t.Errorf("after overrun: %v", errs[0])
	}
}

func TestPrivilegedOpenInNamespace(t *testing.T) {
	// This namespace gets a veth pair; a second, new one has only lo.
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "nlb-a"}, PeerName: "nlb-b"}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if l, err := netlink.LinkByName("nlb-a"); err == nil {
			netlink.LinkDel(l)
		}
	}()
	other := newNamespace(t)
	defer other.Close()

	for _, tc := range []struct {
		path  string
		links int
	}{{"", 3}, {"/proc/self/ns/net", 3}, {fmt.Sprintf("/proc/self/fd/%d", int(other)), 1}} {
		s, err := Open(Config{Protocol: unix.NETLINK_ROUTE, NetNSPath: tc.path})
		if err != nil {
			t.Fatal(err)
		}
		links := 0
		req := NewMessage(unix.RTM_GETLINK, unix.NLM_F_DUMP).Header(make([]byte, unix.SizeofIfInfomsg)).Bytes()
		err = s.Query(req, func(Msg) error { links++; return nil })
		s.Close()
		if err != nil {
			t.Fatal(err)
		}
		if links != tc.links {
			t.Errorf("namespace %q: %d links, want %d", tc.path, links, tc.links)
		}
	}
	// The calling thread is back in its namespace.
	if l, err := netlink.LinkByName("nlb-a"); err != nil || l == nil {
		t.Errorf("after Open in another namespace: %v", err)
	}
}

// newNamespace creates a network namespace and returns a handle to it,
// leaving the calling thread where it was.
func newNamespace(t *testing.T) netns.NsHandle {
	t.Helper()
	ch := make(chan netns.NsHandle)
	go func() {
		// The thread goes back to the test's namespace before it is
		// unlocked: were it left in the new one and happened to be the main
		// thread, which never exits, /proc/self/ns/net would name the new one.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			t.Error(err)
			ch <- netns.None()
			return
		}
		defer orig.Close()
		ns, err := netns.New()
		if err != nil {
			t.Error(err)
		}
		if err := netns.Set(orig); err != nil {
			t.Error(err) // the thread stays locked, and dies with the goroutine
		} else {
			runtime.UnlockOSThread()
		}
		ch <- ns
	}()
	ns := <-ch
	if !ns.IsOpen() {
		t.FailNow()
	}
	return ns
}
