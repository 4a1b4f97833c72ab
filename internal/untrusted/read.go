// Package untrusted reads input that ipvs-proxy does not control — manifest
// files and the configuration file — so that no such input can exhaust the
// daemon's memory or block it: every read is of a regular file, bounded in
// size, and never waits for a writer; YAML is converted only when its
// aliases do not expand it past a bound.
//
// The standard library and sigs.k8s.io/yaml do the reading and parsing; this
// package adds only the checks they leave to the caller: os.ReadFile follows
// a symlink to /dev/zero forever and blocks on a FIFO, and the YAML
// decoder's alias limit counts nodes, not the bytes they expand to.
package untrusted

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is returned for a path that is not a regular file (after
// following symlinks): a FIFO, a device, a socket or a directory.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file or document over its size limit.
var ErrTooLarge = errors.New("too large")

// ReadFile reads a regular file of at most max bytes. The file is opened
// without blocking (a FIFO would otherwise wait for a writer forever) and
// checked on the opened descriptor, so a file swapped for a FIFO or a
// device between a check and the read is still refused. The read stops at
// max+1 bytes whatever the file claims its size is (a symlink to /dev/zero
// says 0).
func ReadFile(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, kind(info.Mode()))}
	}
	if info.Size() > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %d bytes is over the limit of %d", ErrTooLarge, info.Size(), max)}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &fs.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: more than the limit of %d bytes", ErrTooLarge, max)}
	}
	return data, nil
}

// kind names a file type for errors.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "not a plain file"
}
