package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// maxPasswordBytes is bcrypt's input limit.
const maxPasswordBytes = 72

// hashPassword prints the bcrypt hash of a password: asked twice without
// echo when stdin is a terminal (nothing lands in the shell history),
// else the first line of stdin.
func hashPassword(stdin io.Reader, stdout, stderr io.Writer) int {
	var pw string
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		var err error
		pw, err = promptPassword(int(f.Fd()), stderr)
		if err != nil {
			fmt.Fprintln(stderr, "hbd hash-password:", err)
			return 1
		}
	} else {
		line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			fmt.Fprintln(stderr, "hbd hash-password: read stdin:", err)
			return 1
		}
		pw = strings.TrimRight(line, "\r\n")
	}
	if pw == "" {
		fmt.Fprintln(stderr, "hbd hash-password: empty password")
		return 1
	}
	if len(pw) > maxPasswordBytes {
		fmt.Fprintf(stderr, "hbd hash-password: password longer than %d bytes\n", maxPasswordBytes)
		return 1
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(stderr, "hbd hash-password:", err)
		return 1
	}
	fmt.Fprintln(stdout, string(h))
	return 0
}

// promptPassword reads the password twice from the terminal fd,
// prompting on stderr. Echo is switched off before each prompt is shown,
// so nothing typed after the prompt can appear on the screen.
func promptPassword(fd int, stderr io.Writer) (string, error) {
	first, err := readNoEcho(fd, stderr, "Password: ")
	if err != nil {
		return "", err
	}
	second, err := readNoEcho(fd, stderr, "Repeat: ")
	if err != nil {
		return "", err
	}
	if first != second {
		return "", errors.New("the two passwords differ")
	}
	return first, nil
}

// readNoEcho reads one line from the terminal fd with echo off.
func readNoEcho(fd int, stderr io.Writer, prompt string) (string, error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return "", fmt.Errorf("terminal: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(stderr, prompt)
	line, err := bufio.NewReader(io.LimitReader(os.NewFile(uintptr(fd), "tty"), 4096)).ReadString('\n')
	fmt.Fprintln(stderr)
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
