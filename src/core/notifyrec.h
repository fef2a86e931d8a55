/* notifyrec.h - folder change records (FILE_NOTIFY_INFORMATION) rewritten
 * as the host would report them.
 *
 * A watch on a host folder is made on the folder's box copy (file_notify.c).
 * A copy-up lands in the box copy as a new name, and the box copy reports
 * it as added, where on the host the file was already there and only
 * changed. notifyrec_translate walks the records FVM's own request got and
 * writes the program's: a record ADDED for a name the caller says is a
 * copy-up (is_copy_up) becomes MODIFIED when the program's filter asks for
 * modifications, and is dropped when it does not (the host reports nothing
 * then), or when a MODIFIED record for the same name follows it in the same
 * report (the change that caused the copy-up, reported once as the host
 * does), or when the caller says the copy is still the host's content. Everything else is copied as it is. Records are laid out as
 * Windows lays them: each starts on a 4-byte boundary, NextEntryOffset 0
 * ends the list. Portable and allocation-free (the runtime has no C
 * runtime). */
#ifndef FVM_CORE_NOTIFYREC_H
#define FVM_CORE_NOTIFYREC_H

#include <stddef.h>
#include <stdint.h>

#define NOTIFYREC_ACTION_ADDED            1u
#define NOTIFYREC_ACTION_REMOVED          2u
#define NOTIFYREC_ACTION_MODIFIED         3u
#define NOTIFYREC_ACTION_RENAMED_OLD_NAME 4u
#define NOTIFYREC_ACTION_RENAMED_NEW_NAME 5u

/* The filter bits under which a change is reported as MODIFIED. */
#define NOTIFYREC_MODIFY_FILTER 0x0000017Cu  /* attributes, size, last write, last access, creation, security */

/* The fixed head of one record (FILE_NOTIFY_INFORMATION without its name). */
#define NOTIFYREC_HEAD_BYTES 12u

typedef enum notifyrec_result {
    NOTIFYREC_OK,         /* *out_len bytes of records written */
    NOTIFYREC_EMPTY,      /* every record was dropped: nothing to report yet */
    NOTIFYREC_OVERFLOW,   /* the records do not fit in out: STATUS_NOTIFY_ENUM_DIR */
    NOTIFYREC_MALFORMED   /* in is not a well-formed record list */
} notifyrec_result;

/* Does name (units, relative to the watched folder) stand for a host entry
 * the box copied up (not one the box made)? 0: no; NOTIFYREC_COPY_UP: yes;
 * NOTIFYREC_COPY_UP_UNCHANGED: yes, and the copy is still the host's
 * content (a copy made for a change still to come, which reports itself):
 * the record is dropped. For notifyrec_filter: nonzero drops the record. */
#define NOTIFYREC_COPY_UP           1
#define NOTIFYREC_COPY_UP_UNCHANGED 2
typedef int (*notifyrec_is_copy_up_fn)(void *ctx, const uint16_t *name, size_t len);

notifyrec_result notifyrec_translate(const uint8_t *in, size_t in_len, uint32_t filter,
                                     notifyrec_is_copy_up_fn is_copy_up, void *ctx, uint8_t *out, size_t out_cap,
                                     size_t *out_len);

/* The records of in for which drop (name) says no, copied to out (the host
 * folder's records: a name the box has touched does not change the view). */
notifyrec_result notifyrec_filter(const uint8_t *in, size_t in_len, notifyrec_is_copy_up_fn drop, void *ctx,
                                  uint8_t *out, size_t out_cap, size_t *out_len);

/* Appends a well-formed record list (recs) to a queue of records (queued
 * bytes, the last record at *last), as one list; NOTIFYREC_OVERFLOW (the
 * queue unchanged) when it does not fit in cap. */
notifyrec_result notifyrec_append(uint8_t *queue, size_t cap, size_t *queued, size_t *last, const uint8_t *recs,
                                  size_t recs_len);

#endif
