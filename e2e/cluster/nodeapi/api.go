// Package nodeapi is what the cluster harness (e2e/cluster) and the node agent (e2e/cluster/nodeagent) agree on:
// the node's configuration file and the agent's HTTP API.
package nodeapi

// ConfigFile is the name of the node's configuration, in the share directory (the directory of the agent binary).
const ConfigFile = "node.json"

// Port is where the agent listens, on the node's address.
const Port = 7070

// Config is the node's configuration, written by the host before every boot.
type Config struct {
	// Name is the node's host name (and Node name).
	Name string `json:"name"`
	// Address is the node's address with its prefix on its one link, e.g. 10.99.0.2/24.
	Address string `json:"address"`
	// Gateway is the host's end of the link, the node's default route.
	Gateway string `json:"gateway"`
	// Modules are loaded at boot, with their dependencies.
	Modules []string `json:"modules"`
	// Sysctls are set at boot, after the modules (net.bridge.* exists only with br_netfilter).
	Sysctls map[string]string `json:"sysctls"`
	// Containerd and Kubelet are the command lines of the two services (absolute paths on the host root).
	Containerd []string `json:"containerd"`
	Kubelet    []string `json:"kubelet"`
	// CPUMHz is added to /proc/cpuinfo as "cpu MHz": the kubelet's cadvisor refuses to start without a clock
	// speed, and a user-mode Linux cpuinfo has none.
	CPUMHz string `json:"cpuMHz"`
}

// ExecRequest asks the agent to run a command in the node's root namespaces.
type ExecRequest struct {
	Argv  []string `json:"argv"`
	Stdin string   `json:"stdin,omitempty"`
	// TimeoutSeconds kills the command after that long (default 60).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
}

// ExecResponse is a command's outcome. ExitCode is -1 when it could not start or was killed.
type ExecResponse struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exitCode"`
	Error    string `json:"error,omitempty"`
}
