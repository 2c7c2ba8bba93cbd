// Command fileserve serves one file over plain HTTP on a loopback address. The
// benchmark downloads a large blob from it to measure what loopback HTTP can do
// on this machine, the ceiling for a registry's raw blob GET.
//
//	fileserve -addr 127.0.0.1:PORT -file PATH
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	file := flag.String("file", "", "file to serve at every path")
	flag.Parse()
	if *file == "" {
		flag.Usage()
		os.Exit(2)
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || !(host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1") {
		fmt.Fprintln(os.Stderr, "fileserve: -addr must be a loopback address")
		os.Exit(2)
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fileserve:", err)
		os.Exit(1)
	}
	fmt.Println(l.Addr().String())
	err = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(*file)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", fi.ModTime(), f)
	}))
	fmt.Fprintln(os.Stderr, "fileserve:", err)
	os.Exit(1)
}
