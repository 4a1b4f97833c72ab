// Package framework is the toolkit of the end-to-end scenarios in package e2e.
//
// The scenarios run inside a qemu guest that boots Debian's kernel (IPVS,
// ipset, iptables, dummy and veth links), as root, all in one boot:
// scripts/e2e.sh builds the test binary, boots the guest with
// scripts/vm/run.sh and runs it there with IPVS_PROXY_E2E=1. Outside the guest
// the e2e package compiles but runs nothing: its TestMain calls [Main], which
// skips everything unless IPVS_PROXY_E2E is set.
//
// # Topology and addressing plan
//
// The guest's root network namespace plays the node. It has no external
// interface (except eth0, 10.0.2.15/24, when the guest was booted with
// --net user). Everything else is made by the scenarios:
//
//	10.96.0.0/16     Service VIPs (ClusterIPs), on the dummy link kube-ipvs0
//	10.244.0.0/16    backends (pods), each in its own namespace: 10.244.<n>.<m>
//	10.250.0.0/16    client namespaces (e.g. for source-range tests)
//	10.10.0.1        NodeIP: the node's address, on the root end of every veth
//
// Every namespace made by [NewBackend] or [NewClientNS] is joined to the root
// namespace by a veth pair: "ve-<name>" in the root namespace carries NodeIP/32
// and a /32 route to the namespace's address; "eth0" inside carries that
// address/32 and a default route via NodeIP (with a permanent neighbor entry,
// so it works even when the node sets arp_ignore). Traffic between namespaces
// is routed by the root namespace, which is why net.ipv4.ip_forward is turned
// on when a namespace is made.
//
// Backends serve, under their name:
//
//	TCP  80, 8080  HTTP: every path answers "<name>\n" with header X-Source
//	               holding the client address as the backend saw it
//	UDP  53        every datagram is answered with "<name>\n"
//	TCP  9000, 53  long-lived connections: every line is answered with "<name>\n"
//
// # Shape of a scenario
//
//	func TestSomething(t *testing.T) {
//		framework.ResetKernel(t)
//		a := framework.NewBackend(t, "pod-a", "10.244.1.2")
//		dir := t.TempDir()
//		framework.WriteManifest(t, dir, "svc.yaml", serviceYAML)
//		proxy := framework.StartProxy(t, framework.Options{ManifestDir: dir})
//		framework.Eventually(t, 10*time.Second, func() error {
//			_, err := framework.Client{}.HTTPGet("10.96.0.10:80")
//			return err
//		})
//		...
//	}
//
// Helpers that take a testing.TB fail the test with the command, its output
// and its error; helpers that return an error never fail the test themselves,
// so they can be used inside [Eventually].
package framework
