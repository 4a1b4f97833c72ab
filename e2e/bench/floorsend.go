package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// sendBatch sends reqs on a new netlink socket of protocol proto, chunks of
// up to floorChunk bytes per sendmsg, with NLM_F_ACK only on the last
// request, and returns the time from the first sendmsg to that last ack.
// Any failure reported by the kernel fails the load: the floor must leave
// exactly the desired state.
func sendBatch(proto int, reqs [][]byte) (time.Duration, int, error) {
	if len(reqs) == 0 {
		return 0, 0, nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return 0, 0, err
	}
	defer unix.Close(fd)
	for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 2*floorChunk); err != nil {
			return 0, 0, fmt.Errorf("raise socket buffer: %w", err)
		}
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, 0, err
	}
	// The wire form of every request, sequence numbers 1..n, before the clock.
	var chunks [][]byte
	var chunk []byte
	for i, r := range reqs {
		flags := binary.NativeEndian.Uint16(r[6:8]) | unix.NLM_F_REQUEST
		if i == len(reqs)-1 {
			flags |= unix.NLM_F_ACK
		}
		if len(chunk) > 0 && len(chunk)+len(r)+4 > floorChunk {
			chunks, chunk = append(chunks, chunk), nil
		}
		start := len(chunk)
		chunk = append(chunk, r...)
		binary.NativeEndian.PutUint32(chunk[start:start+4], uint32(len(r)))
		binary.NativeEndian.PutUint16(chunk[start+6:start+8], flags)
		binary.NativeEndian.PutUint32(chunk[start+8:start+12], uint32(i+1))
		for len(chunk)%4 != 0 {
			chunk = append(chunk, 0)
		}
	}
	chunks = append(chunks, chunk)
	kernelAddr := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	start := time.Now()
	for _, c := range chunks {
		if err := unix.Sendto(fd, c, 0, kernelAddr); err != nil {
			return 0, 0, fmt.Errorf("sendmsg of %d bytes: %w", len(c), err)
		}
	}
	err = awaitAck(fd, uint32(len(reqs)))
	return time.Since(start), len(chunks), err
}

// awaitAck reads until the acknowledgement of request last, failing on any
// error message before it.
func awaitAck(fd int, last uint32) error {
	buf := make([]byte, 1<<16)
	var errs []error
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return err
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.Header.Type != unix.NLMSG_ERROR || len(m.Data) < 4 {
				continue
			}
			if code := int32(binary.NativeEndian.Uint32(m.Data[:4])); code != 0 {
				errs = append(errs, fmt.Errorf("request %d: %w", m.Header.Seq, syscall.Errno(-code)))
			}
			if m.Header.Seq == last {
				return errors.Join(errs...)
			}
		}
	}
}
