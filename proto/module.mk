# proto/: the wire protocol. protoc-c generates the message code into $(O).
PROTO_GEN := $(O)/proto/freehint.pb-c.c $(O)/proto/freehint.pb-c.h
PROTO_SRCS := proto/frame.c proto/msg.c proto/batch.c
PROTO_OBJS := $(PROTO_SRCS:%.c=$(O)/%.o) $(O)/proto/freehint.pb-c.o

$(O)/proto/freehint.pb-c.c $(O)/proto/freehint.pb-c.h &: proto/freehint.proto
	@mkdir -p $(O)/proto
	protoc-c --c_out=$(O)/proto -Iproto proto/freehint.proto

$(O)/proto/freehint.pb-c.o: $(O)/proto/freehint.pb-c.c
	$(CC) $(filter-out -Wcast-qual -Wmissing-prototypes,$(ALL_CFLAGS)) \
		-c -o $@ $<

# Every object may include the generated header.
$(PROTO_SRCS:%.c=$(O)/%.o): $(O)/proto/freehint.pb-c.h
