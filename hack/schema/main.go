// Command dump prints the Go shape of every built-in Kubernetes kind (JSON names, Go types,
// protobuf field numbers, patch tags) as JSON, for generate.py. It reads client-go's scheme,
// so it knows every kind client-go v0.37 knows.
package main

import (
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

type Field struct {
	JSON          string `json:"json"`
	GoType        string `json:"goType"`
	Shape         any    `json:"shape"`
	Proto         int    `json:"proto,omitempty"`
	OmitEmpty     bool   `json:"omitempty,omitempty"`
	Pointer       bool   `json:"pointer,omitempty"`
	PatchStrategy string `json:"patchStrategy,omitempty"`
	PatchMergeKey string `json:"patchMergeKey,omitempty"`
}

type Struct struct {
	Name   string  `json:"name"`
	Pkg    string  `json:"pkg"`
	Fields []Field `json:"fields"`
}

var structs = map[string]*Struct{}

var special = map[string]string{
	"k8s.io/apimachinery/pkg/apis/meta/v1.Time":       "time",
	"k8s.io/apimachinery/pkg/apis/meta/v1.MicroTime":  "microtime",
	"k8s.io/apimachinery/pkg/api/resource.Quantity":   "quantity",
	"k8s.io/apimachinery/pkg/runtime.RawExtension":    "any",
	"k8s.io/apimachinery/pkg/apis/meta/v1.FieldsV1":   "any",
	"k8s.io/apimachinery/pkg/util/intstr.IntOrString": "intorstring",
}

func shape(t reflect.Type) any {
	if s, ok := special[t.PkgPath()+"."+t.Name()]; ok {
		return map[string]any{"special": s, "go": t.String()}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return shape(t.Elem())
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"scalar": "bytes", "go": t.String()}
		}
		return map[string]any{"list": shape(t.Elem()), "go": t.String()}
	case reflect.Map:
		return map[string]any{"map": shape(t.Elem()), "go": t.String()}
	case reflect.Struct:
		visit(t)
		return map[string]any{"ref": t.PkgPath() + "." + t.Name(), "go": t.String()}
	default:
		return map[string]any{"scalar": t.Kind().String(), "go": t.String()}
	}
}

func visit(t reflect.Type) {
	key := t.PkgPath() + "." + t.Name()
	if _, ok := structs[key]; ok {
		return
	}
	s := &Struct{Name: t.Name(), Pkg: t.PkgPath()}
	structs[key] = s
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("json")
			parts := strings.Split(tag, ",")
			if tag == "-" {
				continue
			}
			inline := false
			omit := false
			for _, p := range parts[1:] {
				if p == "inline" {
					inline = true
				}
				if p == "omitempty" {
					omit = true
				}
			}
			if inline || (f.Anonymous && parts[0] == "") {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				add(ft)
				continue
			}
			name := parts[0]
			if name == "" {
				name = f.Name
			}
			proto := 0
			for _, p := range strings.Split(f.Tag.Get("protobuf"), ",") {
				if n, err := strconv.Atoi(p); err == nil {
					proto = n
					break
				}
			}
			s.Fields = append(s.Fields, Field{
				JSON: name, GoType: f.Type.String(), Shape: shape(f.Type), Proto: proto,
				OmitEmpty: omit, Pointer: f.Type.Kind() == reflect.Pointer,
				PatchStrategy: f.Tag.Get("patchStrategy"), PatchMergeKey: f.Tag.Get("patchMergeKey"),
			})
		}
	}
	add(t)
}

// wireLists are the list kinds served as documents of their own (not <Kind>List of a kind).
var wireLists = map[string]bool{
	"PartialObjectMetadataList": true, "APIGroupDiscoveryList": true,
	"APIGroupList": true, "APIResourceList": true,
}

func main() {
	// client-go's scheme, plus the meta.k8s.io kinds (partial metadata) and aggregated
	// discovery, which the server writes but client-go's typed scheme does not register.
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		scheme.AddToScheme, metav1.AddMetaToScheme, apidiscoveryv2.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	kinds := map[string]string{}
	for gvk, t := range s.AllKnownTypes() {
		if gvk.Version == runtime.APIVersionInternal ||
			(strings.HasSuffix(gvk.Kind, "List") && !wireLists[gvk.Kind]) {
			continue
		}
		visit(t)
		kinds[gvk.Group+"/"+gvk.Version+"/"+gvk.Kind] = t.PkgPath() + "." + t.Name()
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(map[string]any{"kinds": kinds, "structs": structs}); err != nil {
		panic(err)
	}
}
