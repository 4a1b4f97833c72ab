package main

import (
	"encoding/json"
	"log"
	"net/http"
	"strings"
	"time"

	"github.com/ipvs-proxy/ipvs-proxy/e2e/cluster/nodeapi"
)

// serve answers the host on the node's address until the machine stops.
func serve(cfg *nodeapi.Config, r *reaper, svc *services) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /exec", func(w http.ResponseWriter, req *http.Request) {
		var in nodeapi.ExecRequest
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		timeout := time.Duration(in.TimeoutSeconds) * time.Second
		if timeout <= 0 {
			timeout = time.Minute
		}
		res := r.exec(in.Argv, in.Stdin, timeout)
		log.Printf("exec %s: exit %d %s", strings.Join(in.Argv, " "), res.ExitCode, res.Error)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	})
	mux.HandleFunc("POST /poweroff", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
		go func() {
			log.Printf("power off requested at %s: stopping the kubelet and containerd", uptime())
			svc.stop()
			powerOff()
		}()
	})
	addr := listenAddress(cfg)
	log.Printf("serving on %s at %s", addr, uptime())
	return http.ListenAndServe(addr, mux)
}
