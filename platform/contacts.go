package platform

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// contactsAddParams are contacts.add's params.
type contactsAddParams struct {
	ContactListID   string         `json:"contact_list_id"`
	Contacts        []contactParam `json:"contacts"`
	Priority        *bool          `json:"priority"`          // query priority: put the contacts at the front of the queue
	ClearSystemData *bool          `json:"clear_system_data"` // query clearSystemData
	DoNotQueue      *bool          `json:"do_not_queue"`      // query doNotQueue
}

// contactParam is one contact to add. Callable defaults to true.
type contactParam struct {
	ID       string                     `json:"id"`
	Data     map[string]json.RawMessage `json:"data"`
	Callable *bool                      `json:"callable"`
}

// contactBody is one element of the add-contacts request body.
type contactBody struct {
	ID            string                     `json:"id,omitempty"`
	ContactListID string                     `json:"contactListId"`
	Data          map[string]json.RawMessage `json:"data"`
	Callable      bool                       `json:"callable"`
}

// contactsAddRequest builds POST /api/v2/outbound/contactlists/{id}/contacts.
func contactsAddRequest(params json.RawMessage) (prepared, error) {
	const op = OpContactsAdd
	var p contactsAddParams
	if err := decodeParams(op, params, &p); err != nil {
		return prepared{}, err
	}
	if err := checkPathID(op, "contact_list_id", p.ContactListID); err != nil {
		return prepared{}, err
	}
	switch n := len(p.Contacts); {
	case n == 0:
		return prepared{}, invalidf(op, "contacts: want 1-%d contacts, got none", MaxAddContacts)
	case n > MaxAddContacts:
		return prepared{}, invalidf(op, "contacts: want 1-%d contacts, got %d", MaxAddContacts, n)
	}
	body := make([]contactBody, len(p.Contacts))
	seen := make(map[string]int, len(p.Contacts))
	for i, c := range p.Contacts {
		if c.ID != "" {
			if !validContactID(c.ID) {
				return prepared{}, invalidf(op, "contacts[%d].id %q: want 1-%d of A-Z a-z 0-9 - _ . ~", i, truncate(c.ID, 80), maxIDLen)
			}
			if j, dup := seen[c.ID]; dup {
				return prepared{}, invalidf(op, "contacts[%d].id %q repeats contacts[%d].id", i, c.ID, j)
			}
			seen[c.ID] = i
		}
		if len(c.Data) == 0 {
			return prepared{}, invalidf(op, "contacts[%d].data: want an object with at least one column", i)
		}
		for _, k := range slices.Sorted(maps.Keys(c.Data)) { // the first problem in a stable order
			if k == "" || len(k) > maxDataKeyLen || hasControl(k) {
				return prepared{}, invalidf(op, "contacts[%d].data: column name %q: want 1-%d printable bytes", i, truncate(k, 80), maxDataKeyLen)
			}
			// The platform's contact data is a map of string to string (the
			// SDKs' *map[string]string): a number, boolean, null, object or
			// array would be answered 400, so it is refused here, before
			// publishing.
			if v := bytes.TrimSpace(c.Data[k]); len(v) == 0 || v[0] != '"' {
				return prepared{}, invalidf(op, "contacts[%d].data[%q]: want a string, got %s (contact data values are strings: quote numbers, e.g. \"42\")", i, truncate(k, 80), jsonKind(v))
			}
		}
		callable := true
		if c.Callable != nil {
			callable = *c.Callable
		}
		body[i] = contactBody{ID: c.ID, ContactListID: p.ContactListID, Data: c.Data, Callable: callable}
	}
	data, err := marshalBody(body)
	if err != nil {
		return prepared{}, invalidf(op, "contacts: %v", err)
	}
	if len(data) > MaxRequestBodyBytes {
		return prepared{}, invalidf(op, "request body is %d bytes, over the platform's %d-byte limit: split the contacts", len(data), MaxRequestBodyBytes)
	}
	var q []string
	for _, b := range []struct {
		name string
		v    *bool
	}{{"priority", p.Priority}, {"clearSystemData", p.ClearSystemData}, {"doNotQueue", p.DoNotQueue}} {
		if b.v != nil {
			q = append(q, b.name+"="+strconv.FormatBool(*b.v))
		}
	}
	return prepared{op: op, req: request{
		method: http.MethodPost,
		path:   contactsPath(p.ContactListID),
		query:  strings.Join(q, "&"),
		body:   data,
	}}, nil
}

type contactsRemoveParams struct {
	ContactListID string   `json:"contact_list_id"`
	ContactIDs    []string `json:"contact_ids"`
}

// contactsRemoveRequest builds
// DELETE /api/v2/outbound/contactlists/{id}/contacts?contactIds=a,b,c.
func contactsRemoveRequest(params json.RawMessage) (prepared, error) {
	const op = OpContactsRemove
	var p contactsRemoveParams
	if err := decodeParams(op, params, &p); err != nil {
		return prepared{}, err
	}
	if err := checkPathID(op, "contact_list_id", p.ContactListID); err != nil {
		return prepared{}, err
	}
	switch n := len(p.ContactIDs); {
	case n == 0:
		return prepared{}, invalidf(op, "contact_ids: want 1-%d ids, got none", MaxRemoveContacts)
	case n > MaxRemoveContacts:
		return prepared{}, invalidf(op, "contact_ids: want 1-%d ids, got %d (split the job)", MaxRemoveContacts, n)
	}
	seen := make(map[string]int, len(p.ContactIDs))
	for i, id := range p.ContactIDs {
		if !validContactID(id) {
			return prepared{}, invalidf(op, "contact_ids[%d] %q: want 1-%d of A-Z a-z 0-9 - _ . ~", i, truncate(id, 80), maxIDLen)
		}
		if j, dup := seen[id]; dup {
			return prepared{}, invalidf(op, "contact_ids[%d] %q repeats contact_ids[%d]", i, id, j)
		}
		seen[id] = i
	}
	// The ids are URL-unreserved characters, so the list needs no escaping
	// and travels exactly as the platform documents it: contactIds=a,b,c.
	return prepared{op: op, req: request{
		method: http.MethodDelete,
		path:   contactsPath(p.ContactListID),
		query:  "contactIds=" + strings.Join(p.ContactIDs, ","),
	}}, nil
}

// jsonKind names the kind of a JSON value for an error message.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '"':
		return "a string"
	}
	return "a number"
}
