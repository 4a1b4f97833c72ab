package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what `bench load` prints.
type loadResult struct {
	Requests int64
	RPS      float64
}

// loadCmd is the datapath's client, a process of its own: workers that send
// a line and read the backend's one-line answer, on one connection each
// (keep-alive) or on a new connection per request, for a while.
func loadCmd(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	target := fs.String("target", "", "IP:port of a line server")
	keepAlive := fs.Bool("keepalive", true, "one connection per worker (else one per request)")
	workers := fs.Int("workers", 4, "concurrent clients")
	d := fs.Duration("d", 5*time.Second, "how long")
	_ = fs.Parse(args)
	var done atomic.Int64
	var mu sync.Mutex
	var errs error
	var wg sync.WaitGroup
	deadline := time.Now().Add(*d)
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := exchange(*target, *keepAlive, deadline, &done); err != nil {
				mu.Lock()
				errs = errors.Join(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if errs != nil {
		return errs
	}
	return json.NewEncoder(os.Stdout).Encode(loadResult{Requests: done.Load(), RPS: float64(done.Load()) / d.Seconds()})
}

// exchange sends requests until the deadline, counting the answered ones.
func exchange(target string, keepAlive bool, deadline time.Time, done *atomic.Int64) error {
	var c net.Conn
	var r *bufio.Reader
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for time.Now().Before(deadline) {
		if c == nil {
			var err error
			if c, err = net.DialTimeout("tcp4", target, 5*time.Second); err != nil {
				c = nil
				return err
			}
			r = bufio.NewReader(c)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("x\n")); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			return fmt.Errorf("read: %w", err)
		}
		done.Add(1)
		if !keepAlive {
			c.Close()
			c = nil
		}
	}
	return nil
}
