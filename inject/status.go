package inject

import "fmt"

// Status is an NTSTATUS value (spec R41): >= 0 success, < 0 failure.
type Status int32

// The NTSTATUS values the injection API returns or stores in NBL.Status.
const (
	StatusSuccess                Status = 0x00000000
	StatusPending                Status = 0x00000103
	StatusUnsuccessful           Status = -0x3fffffff // 0xC0000001
	StatusInvalidHandle          Status = -0x3ffffff8 // 0xC0000008
	StatusInvalidParameter       Status = -0x3ffffff3 // 0xC000000D
	StatusNoMemory               Status = -0x3fffffe9 // 0xC0000017
	StatusInsufficientResources  Status = -0x3fffff66 // 0xC000009A
	StatusNotSupported           Status = -0x3fffff45 // 0xC00000BB
	StatusInvalidMember          Status = -0x3ffffe85 // 0xC000017B
	StatusInvalidDeviceState     Status = -0x3ffffe7c // 0xC0000184
	StatusFwpNullPointer         Status = -0x3fddffe4 // 0xC022001C
	StatusFwpInvalidFlags        Status = -0x3fddffe2 // 0xC022001E
	StatusFwpInvalidParameter    Status = -0x3fddffcb // 0xC0220035
	StatusFwpL2DriverNotReady    Status = -0x3fddffc2 // 0xC022003E
	StatusFwpTCPIPNotReady       Status = -0x3fddff00 // 0xC0220100
	StatusFwpInjectHandleClosing Status = -0x3fddfeff // 0xC0220101
	StatusFwpInjectHandleStale   Status = -0x3fddfefe // 0xC0220102
	StatusFwpCannotPend          Status = -0x3fddfefd // 0xC0220103
	StatusFwpDropNoICMP          Status = -0x3fddfefc // 0xC0220104
	StatusNDISPaused             Status = -0x3fdcffd6 // 0xC023002A
)

// NTSuccess reports whether s is a success code (NT_SUCCESS, R19).
func (s Status) NTSuccess() bool { return s >= 0 }

// Code returns the status as the unsigned 32-bit value the headers print.
func (s Status) Code() uint32 { return uint32(s) }

// String returns the WDK name, e.g. "STATUS_FWP_INJECT_HANDLE_CLOSING".
func (s Status) String() string {
	switch s {
	case StatusSuccess:
		return "STATUS_SUCCESS"
	case StatusPending:
		return "STATUS_PENDING"
	case StatusUnsuccessful:
		return "STATUS_UNSUCCESSFUL"
	case StatusInvalidHandle:
		return "STATUS_INVALID_HANDLE"
	case StatusInvalidParameter:
		return "STATUS_INVALID_PARAMETER"
	case StatusNoMemory:
		return "STATUS_NO_MEMORY"
	case StatusInsufficientResources:
		return "STATUS_INSUFFICIENT_RESOURCES"
	case StatusNotSupported:
		return "STATUS_NOT_SUPPORTED"
	case StatusInvalidMember:
		return "STATUS_INVALID_MEMBER"
	case StatusInvalidDeviceState:
		return "STATUS_INVALID_DEVICE_STATE"
	case StatusFwpNullPointer:
		return "STATUS_FWP_NULL_POINTER"
	case StatusFwpInvalidFlags:
		return "STATUS_FWP_INVALID_FLAGS"
	case StatusFwpInvalidParameter:
		return "STATUS_FWP_INVALID_PARAMETER"
	case StatusFwpL2DriverNotReady:
		return "STATUS_FWP_L2_DRIVER_NOT_READY"
	case StatusFwpTCPIPNotReady:
		return "STATUS_FWP_TCPIP_NOT_READY"
	case StatusFwpInjectHandleClosing:
		return "STATUS_FWP_INJECT_HANDLE_CLOSING"
	case StatusFwpInjectHandleStale:
		return "STATUS_FWP_INJECT_HANDLE_STALE"
	case StatusFwpCannotPend:
		return "STATUS_FWP_CANNOT_PEND"
	case StatusFwpDropNoICMP:
		return "STATUS_FWP_DROP_NOICMP"
	case StatusNDISPaused:
		return "STATUS_NDIS_PAUSED"
	}
	return fmt.Sprintf("NTSTATUS(0x%08X)", uint32(s))
}

// Error lets a failure Status travel as an error where an API returns one.
func (s Status) Error() string { return s.String() }
