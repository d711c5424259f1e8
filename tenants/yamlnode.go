package tenants

import (
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The tenants file is decoded strictly, key by key, from the YAML node tree
// rather than with yaml.Decoder.KnownFields: that way every problem can be
// reported with the tenant and key it belongs to, and all of them at once.

// fieldSet maps a struct's yaml keys to its fields' indexes. Every field must
// be a pointer, so that "not set" and "set to the zero value" differ.
type fieldSet struct {
	typ    reflect.Type
	index  map[string][]int
	keys   []string        // in declaration order, for messages
	redact map[string]bool // keys whose values never appear in a message
}

func newFieldSet(v any) fieldSet {
	fs := fieldSet{typ: reflect.TypeOf(v), index: map[string][]int{}, redact: map[string]bool{}}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			idx := append(append([]int(nil), prefix...), i)
			tag, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if opts == "inline" {
				walk(f.Type, idx)
				continue
			}
			if tag == "" || f.Type.Kind() != reflect.Pointer {
				panic("tenants: field " + f.Name + " needs a yaml key and a pointer type")
			}
			fs.index[tag] = idx
			if f.Tag.Get("redact") == "true" {
				fs.redact[tag] = true
			}
			fs.keys = append(fs.keys, tag)
		}
	}
	walk(fs.typ, nil)
	return fs
}

// decodeMapping decodes mapping node n into dst (a pointer to fs.typ). It
// reports unknown and repeated keys, null values and values of the wrong type
// through report, naming the key and the line. Merge keys (<<: *anchor) are
// honoured; explicit keys override merged ones. It returns false when n is not
// a mapping at all.
func (fs fieldSet) decodeMapping(n *yaml.Node, dst any, report func(line int, msg string)) bool {
	return fs.decode(n, dst, report, map[*yaml.Node]bool{})
}

// decode is decodeMapping; visited holds the mappings already decoded, so
// that merge cycles and merge bombs (<<: [*a, *a, …] nested) cost each
// mapping once.
func (fs fieldSet) decode(n *yaml.Node, dst any, report func(line int, msg string), visited map[*yaml.Node]bool) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		report(n.Line, fmt.Sprintf("want a mapping of %s, got %s", strings.Join(fs.keys, ", "), describe(n)))
		return false
	}
	if visited[n] {
		return true
	}
	visited[n] = true
	v := reflect.ValueOf(dst).Elem()
	// Merged mappings first, so the mapping's own keys win.
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag != "!!merge" {
			continue
		}
		val = resolve(val)
		if val.Kind == yaml.SequenceNode {
			// Earlier mappings in a merge list take precedence: apply them last.
			for j := len(val.Content) - 1; j >= 0; j-- {
				fs.decode(val.Content[j], dst, report, visited)
			}
		} else {
			fs.decode(val, dst, report, visited)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Tag == "!!merge" {
			continue
		}
		if seen[k.Value] {
			report(k.Line, fmt.Sprintf("%s: set twice", k.Value))
			continue
		}
		seen[k.Value] = true
		idx, ok := fs.index[k.Value]
		if !ok || k.Kind != yaml.ScalarNode {
			report(k.Line, fmt.Sprintf("unknown field %q", k.Value))
			continue
		}
		val = resolve(val)
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			report(val.Line, fmt.Sprintf("%s: no value", k.Value))
			continue
		}
		f := v.FieldByIndex(idx)
		p := reflect.New(f.Type().Elem())
		if err := val.Decode(p.Interface()); err != nil {
			got := describe(val)
			if fs.redact[k.Value] {
				got = "something else"
			}
			report(val.Line, fmt.Sprintf("%s: want %s, got %s", k.Value, typeName(f.Type().Elem()), got))
			continue
		}
		f.Set(p)
	}
	return true
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "…"
		}
		return fmt.Sprintf("%q", v)
	}
	return "nothing"
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(typeName(t.Elem()), "a ") + "s"
	}
	return t.String()
}
