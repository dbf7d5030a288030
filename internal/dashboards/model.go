// Package dashboards defines certpulse's Grafana dashboards: a small model
// that marshals to Grafana's dashboard JSON, and the dashboards themselves.
package dashboards // import "github.com/certpulse/certpulse/internal/dashboards"

// Dashboard is a Grafana dashboard (the fields certpulse uses).
type Dashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Tags          []string       `json:"tags"`
	SchemaVersion int            `json:"schemaVersion"`
	Time          TimeRange      `json:"time"`
	Refresh       string         `json:"refresh"`
	Templating    Templating     `json:"templating"`
	Annotations   Annotations    `json:"annotations"`
	Panels        []*Panel       `json:"panels"`
	Links         []any          `json:"links"`
	Editable      bool           `json:"editable"`
	GraphTooltip  int            `json:"graphTooltip"`
	Description   string         `json:"description,omitempty"`
	Timezone      string         `json:"timezone"`
	WeekStart     string         `json:"weekStart"`
	FiscalYear    int            `json:"fiscalYearStartMonth"`
	LiveNow       bool           `json:"liveNow"`
	Version       int            `json:"version"`
	ID            *int           `json:"id"`
	Style         string         `json:"style"`
	TimePicker    map[string]any `json:"timepicker"`
}

// TimeRange is the default time range.
type TimeRange struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Templating holds the variables.
type Templating struct {
	List []Variable `json:"list"`
}

// Variable is a dashboard variable: a datasource or a label query.
type Variable struct {
	Name       string         `json:"name"`
	Label      string         `json:"label,omitempty"`
	Type       string         `json:"type"` // datasource, query
	Query      any            `json:"query"`
	Datasource *Datasource    `json:"datasource,omitempty"`
	Multi      bool           `json:"multi"`
	IncludeAll bool           `json:"includeAll"`
	AllValue   string         `json:"allValue,omitempty"`
	Refresh    int            `json:"refresh"`
	Current    map[string]any `json:"current"`
	Hide       int            `json:"hide"`
	Sort       int            `json:"sort"`
	Regex      string         `json:"regex"`
	Options    []any          `json:"options"`
}

// Datasource points at a datasource variable.
type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// Annotations are the annotation queries.
type Annotations struct {
	List []Annotation `json:"list"`
}

// Annotation marks events (lifecycle events from Loki) on time series.
type Annotation struct {
	Name       string      `json:"name"`
	Datasource *Datasource `json:"datasource"`
	Enable     bool        `json:"enable"`
	IconColor  string      `json:"iconColor"`
	Expr       string      `json:"expr"`
	TitleFmt   string      `json:"titleFormat,omitempty"`
	TextFormat string      `json:"textFormat,omitempty"`
	BuiltIn    int         `json:"builtIn"`
	Hide       bool        `json:"hide"`
	Type       string      `json:"type,omitempty"`
}

// Panel is one panel; Type is timeseries, stat, table, bargauge or logs.
type Panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description,omitempty"`
	GridPos     GridPos        `json:"gridPos"`
	Datasource  *Datasource    `json:"datasource"`
	Targets     []Target       `json:"targets"`
	FieldConfig map[string]any `json:"fieldConfig"`
	Options     map[string]any `json:"options"`
}

// GridPos places a panel on the 24-column grid.
type GridPos struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// Target is one query: PromQL for Mimir, LogQL for Loki.
type Target struct {
	RefID        string      `json:"refId"`
	Expr         string      `json:"expr"`
	LegendFormat string      `json:"legendFormat,omitempty"`
	Instant      bool        `json:"instant,omitempty"`
	Format       string      `json:"format,omitempty"`
	Datasource   *Datasource `json:"datasource"`
}
