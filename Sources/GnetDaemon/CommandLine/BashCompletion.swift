/// Bash completion scripts for gnetd-style daemons and gnetctl, printed by
/// `--generate-completion-script bash` and installed by the Debian package in
/// /usr/share/bash-completion/completions.
public enum BashCompletion {
    /// Completion for a daemon's command line: its options, and files after `--config`.
    public static func daemon(_ name: String) -> String {
        let function = "_" + name.map { $0.isLetter || $0.isNumber ? $0 : "_" }.reduce("") { $0 + String($1) }
        return """
        # bash completion for \(name)
        \(function)() {
            local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
            case $prev in
                -c|--config) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            esac
            COMPREPLY=($(compgen -W "--config --check --version --help" -- "$cur"))
        }
        complete -o filenames -F \(function) \(name)

        """
    }

    /// Completion for gnetctl: its commands, their options, files after `--config` and sockets
    /// after `--socket`.
    public static func gnetctl(commands: [String]) -> String {
        """
        # bash completion for gnetctl
        _gnetctl() {
            local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} word command=""
            case $prev in
                -c|--config|-s|--socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
                --watch) return ;;
            esac
            for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
                case $word in \(commands.joined(separator: "|"))) command=$word ;; esac
            done
            if [[ $cur == -* || -n $command ]]; then
                local options="--socket --config --json --help"
                [[ $command == stats ]] && options="$options --watch --prometheus"
                [[ -z $command ]] && options="$options --version"
                COMPREPLY=($(compgen -W "$options" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "\(commands.joined(separator: " ")) help" -- "$cur"))
            fi
        }
        complete -o filenames -F _gnetctl gnetctl

        """
    }
}
