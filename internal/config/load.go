package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	kpv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	k8sjson "sigs.k8s.io/json"

	"github.com/ipvs-proxy/ipvs-proxy/internal/untrusted"
)

// The apiVersion and kind of kube-proxy's configuration file.
const (
	APIVersion = "kubeproxy.config.k8s.io/v1alpha1"
	Kind       = "KubeProxyConfiguration"
)

// Report carries what loading noticed without failing: unknown fields
// (warnings) and fields that only other proxy modes use (infos).
type Report struct {
	Warnings []string
	Infos    []string
}

// MaxFileSize bounds the configuration file (kube-proxy's is a few hundred bytes).
const MaxFileSize = 1 << 20

// LoadFile reads and validates a KubeProxyConfiguration file: a regular
// file of at most MaxFileSize bytes (a FIFO or a symlink to /dev/zero is
// refused, not read forever).
func LoadFile(path string) (*Config, *Report, error) {
	data, err := untrusted.ReadFile(path, MaxFileSize)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	cfg, rep, err := Parse(data)
	if err != nil {
		return nil, rep, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, rep, nil
}

// Parse decodes a KubeProxyConfiguration (YAML or JSON), applies kube-proxy's
// defaults and validates every field. All invalid fields are reported together,
// each error naming its field.
func Parse(data []byte) (*Config, *Report, error) {
	rep := &Report{}
	js, err := untrusted.YAMLToJSON(data, MaxFileSize)
	if err != nil {
		return nil, rep, fmt.Errorf("not valid YAML: %w", err)
	}
	var raw map[string]any
	if err := k8sjson.UnmarshalCaseSensitivePreserveInts(js, &raw); err != nil || raw == nil {
		return nil, rep, errors.New("not a KubeProxyConfiguration object (expected a YAML mapping with apiVersion and kind)")
	}
	if err := checkTypeMeta(raw); err != nil {
		return nil, rep, err
	}
	ext, hasExt := raw[ExtensionKey]
	if hasExt {
		delete(raw, ExtensionKey) // kube-proxy's fields are decoded without ipvs-proxy's own
		if js, err = jsonOf(raw); err != nil {
			return nil, rep, err
		}
	}
	var kpc kpv1alpha1.KubeProxyConfiguration
	strictErrs, err := k8sjson.UnmarshalStrict(js, &kpc)
	if err != nil {
		if path, ferr := locate(raw, reflect.TypeOf(kpc), ""); path != "" {
			return nil, rep, fmt.Errorf("%s: %w", path, ferr)
		}
		return nil, rep, fmt.Errorf("decode: %w", err)
	}
	for _, e := range strictErrs {
		rep.Warnings = append(rep.Warnings, e.Error())
	}
	if ignored := otherModeFields(raw); len(ignored) > 0 {
		rep.Infos = append(rep.Infos, "ignoring fields that only other proxy modes use: "+strings.Join(ignored, ", "))
	}
	switch kpc.Mode {
	case "ipvs":
	case "":
		// kube-proxy would run its default, iptables: running ipvs instead
		// would silently change the node's datapath
		return nil, rep, errors.New(`mode: not set, so kube-proxy would run its default mode, "iptables"; ipvs-proxy implements only the ipvs mode: set mode: ipvs`)
	default:
		return nil, rep, fmt.Errorf("mode: %q is not supported: ipvs-proxy implements only the ipvs mode; set mode: ipvs", kpc.Mode)
	}
	cfg, err := fromV1alpha1(&kpc)
	if hasExt && cfg != nil {
		err = errors.Join(err, applyExtension(ext, cfg, rep))
	}
	if err != nil {
		return nil, rep, err
	}
	return cfg, rep, nil
}

func jsonOf(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("re-encode: %w", err)
	}
	return b, nil
}

func checkTypeMeta(raw map[string]any) error {
	var errs []error
	if v, _ := raw["apiVersion"].(string); v != APIVersion {
		errs = append(errs, fmt.Errorf("apiVersion: %q, want %q", v, APIVersion))
	}
	if v, _ := raw["kind"].(string); v != Kind {
		errs = append(errs, fmt.Errorf("kind: %q, want %q", v, Kind))
	}
	return errors.Join(errs...)
}

// otherModeFields lists the fields present in the file that only the
// iptables, nftables or Windows proxies use (iptables.masqueradeBit and
// iptables.masqueradeAll are shared with the ipvs mode and not listed), and
// the top-level fields kube-proxy itself no longer uses on Linux, when set.
func otherModeFields(raw map[string]any) []string {
	var out []string
	for _, section := range []string{"iptables", "nftables", "winkernel"} {
		m, _ := raw[section].(map[string]any)
		for k := range m {
			if section == "iptables" && (k == "masqueradeBit" || k == "masqueradeAll") {
				continue
			}
			out = append(out, section+"."+k)
		}
	}
	// unused by kube-proxy's Linux modes too, or meaningless here (no
	// metric of ipvs-proxy is hidden)
	for _, k := range []string{"portRange", "windowsRunAsService", "showHiddenMetricsForVersion"} {
		if v, ok := raw[k]; ok && v != "" && v != false {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}
