package datastore

import (
	"io"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// forwardLogrus sends kine's logrus output to our klog logger, so a user
// reads one log with one format. logrus's standard logger is global state
// owned by the library; configuring it is the registration kine demands.
func forwardLogrus(logger klog.Logger) {
	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrus.InfoLevel)
	logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
	logrus.AddHook(&klogHook{logger: logger})
}

type klogHook struct{ logger klog.Logger }

func (h *klogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h *klogHook) Fire(e *logrus.Entry) error {
	kv := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		kv = append(kv, k, v)
	}
	switch {
	case e.Level <= logrus.ErrorLevel:
		h.logger.Error(nil, e.Message, kv...)
	case e.Level == logrus.DebugLevel || e.Level == logrus.TraceLevel:
		h.logger.V(4).Info(e.Message, kv...)
	default:
		h.logger.Info(e.Message, kv...)
	}
	return nil
}
