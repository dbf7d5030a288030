package faultlab

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
)

// smtpServerStartTLS plays the server side of an SMTP STARTTLS upgrade.
func smtpServerStartTLS(c net.Conn) error {
	r := bufio.NewReader(io.LimitReader(c, 4096))
	if _, err := io.WriteString(c, "220 lab.certpulse.test ESMTP certpulse-lab\r\n"); err != nil {
		return err
	}
	for i := 0; i < 8; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			if _, err := io.WriteString(c, "250-lab.certpulse.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"); err != nil {
				return err
			}
		case cmd == "STARTTLS":
			_, err := io.WriteString(c, "220 2.0.0 Ready to start TLS\r\n")
			return err
		default:
			if _, err := io.WriteString(c, "502 5.5.2 command not recognized\r\n"); err != nil {
				return err
			}
		}
	}
	return errors.New("smtp: no STARTTLS")
}
