package framework

import (
	"reflect"
	"testing"
)

func TestParseIPSetMembers(t *testing.T) {
	out := `Name: KUBE-CLUSTER-IP
Type: hash:ip,port
Revision: 6
Header: family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x5c3f6d9e
Size in memory: 264
References: 1
Number of entries: 2
Members:
10.96.0.10,tcp:80
10.96.0.10,udp:53
`
	got := parseIPSetMembers(out)
	want := []string{"10.96.0.10,tcp:80", "10.96.0.10,udp:53"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members = %q, want %q", got, want)
	}
	if got := parseIPSetMembers("Name: X\nMembers:\n"); got != nil {
		t.Errorf("empty set: members = %q, want none", got)
	}
}

func TestParseAddrs(t *testing.T) {
	out := `5: kube-ipvs0    inet 10.96.0.10/32 scope global kube-ipvs0\       valid_lft forever preferred_lft forever
5: kube-ipvs0    inet 10.96.0.11/32 scope global kube-ipvs0\       valid_lft forever preferred_lft forever
5: kube-ipvs0    inet6 fd00::a/128 scope global \       valid_lft forever preferred_lft forever
`
	got := parseAddrs(out)
	want := []string{"10.96.0.10/32", "10.96.0.11/32", "fd00::a/128"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("addrs = %q, want %q", got, want)
	}
}

func TestTail(t *testing.T) {
	if got := tail("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("tail = %q", got)
	}
	if got := tail("a", 5); got != "a" {
		t.Errorf("tail = %q", got)
	}
}

func TestLoadErrorsIgnoreLocalPort(t *testing.T) {
	a := localAddr.ReplaceAllString("read tcp 10.10.0.1:41234->10.96.0.10:80: i/o timeout", "")
	b := localAddr.ReplaceAllString("read tcp 10.10.0.1:52345->10.96.0.10:80: i/o timeout", "")
	if a != b || a != "read tcp 10.96.0.10:80: i/o timeout" {
		t.Errorf("normalized errors differ: %q vs %q", a, b)
	}
}
