package storegate_test

import (
	"reflect"
	"testing"

	"storegate"
)

func TestFieldError_LeavesOutEmptyNames(t *testing.T) {
	if got := storegate.FieldError("bad body", "").Fields; got != nil {
		t.Errorf("fields = %q, want none when the whole body is at fault", got)
	}
	if got := storegate.FieldError("bad", "a", "", "b.0").Fields; !reflect.DeepEqual(got, []string{"a", "b.0"}) {
		t.Errorf("fields = %q, want [a b.0]", got)
	}
}
