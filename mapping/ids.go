package mapping

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
)

// Senders write the same id as a JSON number in one payload and as a
// string in another (Xsolla's SDK test payloads send transaction.external_id
// as 1, its documentation as "1"). The schemas accept both forms where a
// sender uses both; these types read either form once, here, so the rest of
// storegate sees one.

// ID is an identifier kept as text: "player-1", or the decimal text of an
// integer. null reads as "".
type ID string

func (id *ID) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*id = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*id = ID(s)
	case bytes.ContainsAny(b, ".eE"):
		return &json.UnmarshalTypeError{Value: "number " + string(b), Type: reflect.TypeFor[string]()}
	default:
		// An integer literal is its own decimal text (JSON allows no
		// leading zeros), whatever its size: Steam's ids are uint64.
		*id = ID(b)
	}
	return nil
}

// Int is an integer that senders write as a JSON number or as a decimal
// string ("id": 1 or "id": "1"). null reads as 0.
type Int int64

func (n *Int) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		*n = 0
		return nil
	}
	if b[0] == '"' && json.Unmarshal(b, &s) != nil {
		return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[int64]()}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[int64]()}
	}
	*n = Int(v)
	return nil
}

// String is the decimal text of n.
func (n Int) String() string { return strconv.FormatInt(int64(n), 10) }
