package cluster

import (
	"encoding/xml"
	"fmt"
	"os"
	"sort"
	"strings"
)

// specResult is one spec of an e2e.test JUnit report.
type specResult struct {
	Name    string
	Status  string // passed, failed or skipped
	Message string // why it failed or was skipped
	Seconds float64
}

type specResults []specResult

// readJUnit reads the JUnit report e2e.test writes into --report-dir (ginkgo's format: a testcase per spec
// with a status attribute, a <skipped> or <failure> element with the reason). The suite's own nodes
// (BeforeSuite, AfterSuite, ...) are kept only when they failed.
func readJUnit(path string) (specResults, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Suites []struct {
			Cases []struct {
				Name    string  `xml:"name,attr"`
				Status  string  `xml:"status,attr"`
				Time    float64 `xml:"time,attr"`
				Skipped *struct {
					Message string `xml:"message,attr"`
				} `xml:"skipped"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				Error *struct {
					Message string `xml:"message,attr"`
				} `xml:"error"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var results specResults
	for _, s := range doc.Suites {
		for _, tc := range s.Cases {
			r := specResult{Name: strings.TrimPrefix(tc.Name, "[It] "), Status: tc.Status, Seconds: tc.Time}
			switch {
			case tc.Failure != nil:
				r.Status, r.Message = "failed", strings.TrimSpace(tc.Failure.Message+"\n"+tc.Failure.Text)
			case tc.Error != nil:
				r.Status, r.Message = "failed", tc.Error.Message
			case tc.Skipped != nil:
				r.Status, r.Message = "skipped", tc.Skipped.Message
			}
			if r.Status == "" {
				r.Status = "passed"
			}
			suiteNode := strings.HasPrefix(tc.Name, "[") && !strings.HasPrefix(tc.Name, "[It]") &&
				!strings.HasPrefix(tc.Name, "[sig-")
			if suiteNode && r.Status != "failed" {
				continue
			}
			results = append(results, r)
		}
	}
	sort.Slice(results, func(i, j int) bool { return results[i].Name < results[j].Name })
	return results, nil
}

// selected keeps the specs a focus pattern selects (the report lists every spec of the suite), and gives
// those a skip pattern left out the reason the skip file gives. A failure is kept wherever it is (a failed
// BeforeSuite fails everything).
func (rs specResults) selected(focus, skips []pattern) specResults {
	var out specResults
	for _, r := range rs {
		if _, ok := matching(focus, r.Name); !ok && r.Status != "failed" {
			continue
		}
		if p, ok := matching(skips, r.Name); ok {
			r.Status, r.Message = "skipped", "skip.txt: "+p.reason
		}
		out = append(out, r)
	}
	return out
}

func (rs specResults) failed() specResults {
	var out specResults
	for _, r := range rs {
		if r.Status == "failed" {
			out = append(out, r)
		}
	}
	return out
}

func (rs specResults) summary() string {
	n := map[string]int{}
	for _, r := range rs {
		n[r.Status]++
	}
	return fmt.Sprintf("%d passed, %d failed, %d skipped", n["passed"], n["failed"], n["skipped"])
}

// markdown is the results as docs/conformance.md's table: the spec, its result and, for a skip or a failure,
// the first line of why.
func (rs specResults) markdown() string {
	var b strings.Builder
	b.WriteString("| Spec | Result | Time | Why |\n|---|---|---|---|\n")
	for _, r := range rs {
		why, _, _ := strings.Cut(strings.TrimSpace(r.Message), "\n")
		if len(why) > 160 {
			why = why[:160] + "…"
		}
		esc := strings.NewReplacer("|", `\|`, "\n", " ")
		fmt.Fprintf(&b, "| %s | %s | %.0f s | %s |\n", esc.Replace(r.Name), r.Status, r.Seconds, esc.Replace(why))
	}
	b.WriteString("\n" + rs.summary() + "\n")
	return b.String()
}
