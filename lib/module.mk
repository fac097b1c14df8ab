# lib/: code both daemons share, and libfreehint.a with proto/ in it.
LIB_SRCS := lib/log.c lib/xmalloc.c lib/config.c lib/rangeset.c lib/peer.c \
	lib/clock.c lib/unix.c
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)

$(LIB_OBJS): $(O)/proto/freehint.pb-c.h

$(LIBFREEHINT): $(PROTO_OBJS) $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

all: $(LIBFREEHINT)
