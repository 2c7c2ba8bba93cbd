package webhook

import (
	"encoding/json"
	"time"

	"github.com/berth-dev/berth"
)

// CloudEvent is a CloudEvents 1.0 event in the JSON format, as a delivery's
// body holds it.
// https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/formats/json-format.md
type CloudEvent struct {
	SpecVersion string `json:"specversion"` // "1.0"
	ID          string `json:"id"`
	// Source is the registry's URL.
	Source string `json:"source"`
	// Type is "dev.berth." and the event type: dev.berth.image.pushed.
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	Subject         string          `json:"subject,omitempty"`
	DataContentType string          `json:"datacontenttype"` // "application/json"
	Data            json.RawMessage `json:"data"`
}

// Encode returns the CloudEvents document of e, from the registry at source.
func Encode(source string, e berth.Event) ([]byte, error) {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return json.Marshal(CloudEvent{
		SpecVersion:     "1.0",
		ID:              e.ID,
		Source:          source,
		Type:            e.Type.CloudEventType(),
		Time:            e.Time.UTC(),
		Subject:         e.Subject,
		DataContentType: "application/json",
		Data:            data,
	})
}
