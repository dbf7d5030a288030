package attrs // import "github.com/certpulse/certpulse/internal/attrs"

import "fmt"

// Risk is a remediation action's risk class: high-risk actions (trust,
// pins, delete, or any marked high) wait for a person's approval.
type Risk string

// Risk classes; "" in a config means the operation's default.
const (
	RiskLow  Risk = "low"
	RiskHigh Risk = "high"
)

// UnmarshalText rejects unknown risk classes while the config is decoded.
func (r *Risk) UnmarshalText(b []byte) error {
	switch v := Risk(b); v {
	case RiskLow, RiskHigh, "":
		*r = v
		return nil
	}
	return fmt.Errorf("unknown risk %q: low or high", b)
}
