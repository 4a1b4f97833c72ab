package untrusted

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// nodeCost is what each YAML node counts for besides its text, roughly what
// it costs once converted to JSON and decoded.
const nodeCost = 16

// YAMLToJSON converts one YAML (or JSON) document to JSON like
// sigs.k8s.io/yaml.YAMLToJSON, but first refuses a document whose aliases
// would expand it past max bytes: a few kilobytes of nested aliases ("billion
// laughs") expand to gigabytes, and the decoder's own check counts nodes,
// not their size, so long scalars repeated by aliases pass it.
//
// It also refuses content after a top-level flow collection ("{a: 1} {b: 2}"),
// which the YAML parsers drop without a word, and a key given twice in one
// mapping (which would otherwise keep one of them silently; the API server
// refuses it too).
func YAMLToJSON(doc []byte, max int64) ([]byte, error) {
	if err := CheckExpansion(doc, max); err != nil {
		return nil, err
	}
	if err := checkNothingAfterFlow(doc); err != nil {
		return nil, err
	}
	return yaml.YAMLToJSONStrict(doc)
}

// Empty reports whether a document holds nothing but blank lines, comments
// and document markers ("---", "..."): what `helm template` writes for an
// empty template.
func Empty(doc []byte) bool { return firstContent(doc) == 0 }

// checkNothingAfterFlow returns an error when a document that is a flow
// collection ("{...}" or "[...]") has more after it. Block-style documents
// cannot hide anything that way and are not parsed twice.
func checkNothingAfterFlow(doc []byte) error {
	if c := firstContent(doc); c != '{' && c != '[' {
		return nil
	}
	dec := yamlv3.NewDecoder(bytes.NewReader(doc))
	if _, ok := decodeNode(dec); !ok {
		return nil // not YAML: the converter reports it
	}
	var next yamlv3.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return errors.New("more after the end of the document (a second object needs a \"---\" line before it)")
	}
	return nil
}

// CheckExpansion returns an error when doc's aliases expand it to more than
// max bytes (text plus a small cost per node). Documents without anchors
// are not parsed twice.
func CheckExpansion(doc []byte, max int64) error {
	if !bytes.ContainsRune(doc, '&') || !bytes.ContainsRune(doc, '*') {
		return nil // no anchor or no alias: nothing can expand
	}
	root, ok := decodeNode(yamlv3.NewDecoder(bytes.NewReader(doc)))
	if !ok {
		return nil // not YAML: the converter reports it
	}
	e := expansion{memo: map[*yamlv3.Node]int64{}, max: max}
	if n := e.size(root, 0); n > max {
		return fmt.Errorf("%w: its aliases expand it to more than %d bytes", ErrTooLarge, max)
	}
	return nil
}

// firstContent returns the first character of doc that is not blank, in a
// comment, or a document marker ("---").
func firstContent(doc []byte) byte {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if rest, ok := bytes.CutPrefix(t, []byte("---")); ok {
			t = bytes.TrimSpace(rest)
		}
		if rest, ok := bytes.CutPrefix(t, []byte("...")); ok {
			t = bytes.TrimSpace(rest)
		}
		if len(t) > 0 && t[0] != '#' {
			return t[0]
		}
	}
	return 0
}

// decodeNode decodes the next document into a node tree; ok is false when
// it is not YAML.
func decodeNode(dec *yamlv3.Decoder) (*yamlv3.Node, bool) {
	var n yamlv3.Node
	if dec.Decode(&n) != nil {
		return nil, false
	}
	return &n, true
}

type expansion struct {
	memo map[*yamlv3.Node]int64
	max  int64
}

// maxDepth bounds alias chains and nesting while measuring.
const maxDepth = 10000

// size returns the expanded size of n, saturating just above max.
func (e *expansion) size(n *yamlv3.Node, depth int) int64 {
	if n == nil {
		return 0
	}
	if depth > maxDepth {
		return e.max + 1
	}
	if v, ok := e.memo[n]; ok {
		return v
	}
	e.memo[n] = e.max + 1 // an alias cycle counts as too large
	total := int64(nodeCost + len(n.Value))
	if n.Kind == yamlv3.AliasNode {
		total = e.size(n.Alias, depth+1)
	}
	for _, c := range n.Content {
		total += e.size(c, depth+1)
		if total > e.max {
			total = e.max + 1
			break
		}
	}
	e.memo[n] = total
	return total
}
