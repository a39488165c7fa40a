// Package sdnotify tells a service manager that regente is up, through
// systemd's notify socket (the unit is Type=notify), and that it is going
// down. Without NOTIFY_SOCKET (openrc, a shell, a container) it does
// nothing. It owns no supervision: restarts are the service manager's.
package sdnotify
