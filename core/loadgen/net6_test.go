package loadgen_test

import "net"

func net6() (net.PacketConn, error) { return net.ListenPacket("udp6", "[::1]:0") }
