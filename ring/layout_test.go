// Goal: layouts are validated and edited as documented. Method: a table
// of invalid layouts, each with the error it must produce, and direct
// checks of SingleNode, WithMember and WithoutMember.

package ring

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	ok := Member{ID: "a", Weight: 1}
	for _, tc := range []struct {
		l    Layout
		want string // substring of the error; "" for valid
	}{
		{Layout{Partitions: 256, Replicas: 3, Members: []Member{ok}}, ""},
		{Layout{Partitions: 16, Replicas: 1, Members: []Member{ok}}, ""},
		{Layout{Partitions: 65536, Replicas: 1, Members: []Member{ok}}, ""},
		{Layout{Partitions: 8, Replicas: 1, Members: []Member{ok}}, "power of two"},
		{Layout{Partitions: 131072, Replicas: 1, Members: []Member{ok}}, "power of two"},
		{Layout{Partitions: 100, Replicas: 1, Members: []Member{ok}}, "power of two"},
		{Layout{Partitions: 256, Replicas: 0, Members: []Member{ok}}, "replication factor"},
		{Layout{Partitions: 256, Replicas: 1}, "no members"},
		{Layout{Partitions: 256, Replicas: 1, Members: []Member{ok, ok}}, "duplicate"},
		{Layout{Partitions: 256, Replicas: 1, Members: []Member{{ID: "", Weight: 1}}}, "empty ID"},
		{Layout{Partitions: 256, Replicas: 1, Members: []Member{{ID: "a"}}}, "weight 0"},
	} {
		err := tc.l.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.l, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want one mentioning %q", tc.l, err, tc.want)
		}
	}
}

func TestSingleNode(t *testing.T) {
	l := SingleNode("n1", "127.0.0.1:7000", 0)
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if l.Partitions != DefaultPartitions || l.Replicas != 1 || len(l.Members) != 1 || l.Members[0].Addr != "127.0.0.1:7000" {
		t.Errorf("SingleNode = %+v", l)
	}
	a := Assign(nil, l)
	for p := range a.Partitions() {
		if o := a.Owners(Partition(p)); len(o) != 1 || o[0] != "n1" {
			t.Fatalf("partition %d owners %v", p, o)
		}
	}
}

func TestWithMember(t *testing.T) {
	l := SingleNode("a", "", 64)
	l2 := l.WithMember(Member{ID: "b", Weight: 2})
	l3 := l2.WithMember(Member{ID: "a", Weight: 5, Zone: "z"})
	l4 := l3.WithoutMember("b")
	if len(l.Members) != 1 || len(l2.Members) != 2 || l2.Version != 2 {
		t.Errorf("add: %+v from %+v", l2, l)
	}
	if m, _ := l3.Member("a"); m.Weight != 5 || len(l3.Members) != 2 || l3.Version != 3 {
		t.Errorf("replace: %+v", l3)
	}
	if m, _ := l2.Member("a"); m.Weight != 1 {
		t.Error("WithMember modified its receiver's members")
	}
	if _, ok := l4.Member("b"); ok || len(l4.Members) != 1 || l4.Version != 4 {
		t.Errorf("remove: %+v", l4)
	}
	if _, ok := l3.Member("b"); !ok {
		t.Error("WithoutMember modified its receiver's members")
	}
}
