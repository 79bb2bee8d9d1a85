#include "CGnetLinux.h"

#include <link.h>
#include <sys/prctl.h>

struct build_id_search { char *out; size_t size; int found; };

static int find_build_id(struct dl_phdr_info *info, size_t info_size, void *data) {
    (void)info_size;
    struct build_id_search *search = data;
    if (info->dlpi_name && info->dlpi_name[0] != '\0') return 0;  /* the main program only */
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_NOTE) continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
        const char *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *note = (const ElfW(Nhdr) *)p;
            const char *name = p + sizeof(ElfW(Nhdr));
            const unsigned char *desc = (const unsigned char *)(name + ((note->n_namesz + 3) & ~3u));
            if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
                if (note->n_descsz * 2 + 1 > search->size) return 1;
                static const char hex[] = "0123456789abcdef";
                for (unsigned j = 0; j < note->n_descsz; j++) {
                    search->out[2 * j] = hex[desc[j] >> 4];
                    search->out[2 * j + 1] = hex[desc[j] & 15];
                }
                search->out[note->n_descsz * 2] = '\0';
                search->found = 1;
                return 1;
            }
            p = (const char *)desc + ((note->n_descsz + 3) & ~3u);
        }
    }
    return 0;
}

int gnet_build_id(char *out, size_t size) {
    struct build_id_search search = { out, size, 0 };
    dl_iterate_phdr(find_build_id, &search);
    return search.found ? 0 : -1;
}

int gnet_set_thread_name(const char *name) { return prctl(PR_SET_NAME, name, 0, 0, 0); }
