# NixOS module: services.kato, a system instance with explicit roots, and
# services.kato.instances.<name>, one instance per user (as
# systemd/kato@.service).
#
# The unit carries the same hardening as systemd/kato.service (ci/nix-check
# compares the two). Provider roots are bound read-only and export roots
# read-write into an otherwise empty /home (ProtectHome=tmpfs), at the same
# absolute paths kato is configured with.
{ config
, lib
, pkgs
, ...
}:

let
  cfg = config.services.kato;
  toml = pkgs.formats.toml { };
  inherit (lib)
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    types
    ;

  absolutePath = types.strMatching "/.*";
  rootsOption =
    provider:
    mkOption {
      type = types.listOf absolutePath;
      default = [ ];
      example = [ "/home/alice/.${provider}" ];
      description = "Directories kato reads ${provider} session logs from (bound read-only).";
    };

  providerRoots = lib.concatLists (lib.attrValues cfg.providerRoots);

  # Generated from the options; `settings` is merged over it.
  generated = {
    providers = lib.mapAttrs
      (_name: roots: {
        inherit roots;
        enabled = roots != [ ];
      })
      cfg.providerRoots;
    exports.allowed_roots = cfg.exportRoots;
  };
  configFile = toml.generate "kato-config.toml" (lib.recursiveUpdate generated cfg.settings);

  # Same directives and values as systemd/kato.service (nix/units.nix;
  # ci/nix-check evaluates it and compares).
  units = import ./units.nix;
  inherit (units) hardening;

  # services.kato.instances: one unit per user, as systemd/kato@.service.
  instanceModule =
    { name, config, ... }:
    {
      options = {
        user = mkOption {
          type = types.str;
          default = name;
          defaultText = lib.literalExpression "<name>";
          description = "The account this instance runs as and observes (User=).";
        };
        home = mkOption {
          type = absolutePath;
          default = "/home/${config.user}";
          defaultText = lib.literalExpression ''"/home/''${user}"'';
          description = ''
            The user's home directory, under which the default provider roots
            and export root lie. (The unit names it explicitly: `%h` in a
            system unit is the manager's home.)
          '';
        };
        providerRoots = mkOption {
          type = types.attrsOf (types.listOf absolutePath);
          default = { };
          example = {
            claude = [ "/home/alice/.claude/projects" ];
            aider = [ "/home/alice/src/webapp" ];
          };
          description = ''
            Session-log directories per provider, bound read-only (a missing
            one is skipped). Every provider's default roots under
            {option}`home` (nix/provider-roots.nix) apply unless a provider
            is set here; `[ ]` disables one.
          '';
        };
        exportRoots = mkOption {
          type = types.listOf absolutePath;
          default = [ "${config.home}/kato-exports" ];
          defaultText = lib.literalExpression ''[ "''${home}/kato-exports" ]'';
          example = [ "/srv/kato-fleet/host1/alice" ];
          description = ''
            Directories kato may write exports to: the only writable paths of
            the instance (bound read-write; a missing one is skipped). For a
            fleet, a per-host folder of a shared file system (README "Fleet").
          '';
        };
        settings = mkOption {
          inherit (toml) type;
          default = { };
          example = {
            markdown.thinking = true;
          };
          description = "Further kato configuration, merged over what the options above generate.";
        };
        extraHardening = mkOption {
          type = types.attrsOf types.unspecified;
          default = { };
          example = {
            MemoryMax = "512M";
          };
          description = "Systemd service settings merged over the built-in hardening.";
        };
      };
      # The defaults per provider, so that setting one keeps the others.
      config.providerRoots = lib.mapAttrs (_provider: lib.mkDefault) (units.homeRoots config.home);
    };

  instanceConfigFile =
    name: inst:
    toml.generate "kato-${name}-config.toml" (lib.recursiveUpdate
      {
        providers = lib.mapAttrs
          (_provider: roots: {
            inherit roots;
            enabled = roots != [ ];
          })
          inst.providerRoots;
        exports = {
          allowed_roots = inst.exportRoots;
        } // lib.optionalAttrs (inst.exportRoots != [ ]) {
          default_dir = lib.head inst.exportRoots;
        };
        sandbox.mode = "enforce";
      }
      inst.settings);

  instanceUnit =
    name: inst:
    lib.nameValuePair "kato@${name}" {
      description = "kato for ${inst.user}, a sandboxed observer of coding-agent sessions";
      documentation = [ "https://example.invalid/kato/README.md" ];
      wantedBy = [ "multi-user.target" ];
      after = [ "local-fs.target" ];
      restartTriggers = [ (instanceConfigFile name inst) ];
      environment.KATO_CONFIG = "${instanceConfigFile name inst}";
      serviceConfig =
        units.instanceService
          {
            inherit name;
            inherit (inst) user exportRoots;
            exe = lib.getExe cfg.package;
            providerRoots = lib.concatLists (lib.attrValues inst.providerRoots);
          }
        // inst.extraHardening;
    };
in
{
  options.services.kato = {
    enable = mkEnableOption "kato, a sandboxed observer of coding-agent sessions";

    package = mkPackageOption pkgs "kato" { };

    user = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "alice";
      description = ''
        Run as this existing user instead of a transient one
        (`DynamicUser=`). Useful when kato watches a single user's home
        directory and should write exports owned by that user. With the
        default (null) kato runs as a dynamic user, and access to the roots is
        granted through {option}`services.kato.supplementaryGroups`.
      '';
    };

    supplementaryGroups = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "kato-io" ];
      description = ''
        Static groups for the service, typically one that ACLs on the
        provider and export roots grant read (provider) and write (export)
        access to.
      '';
    };

    providerRoots = mkOption {
      type = types.submodule {
        options = {
          claude = rootsOption "claude";
          codex = rootsOption "codex";
          # The chats only: ~/.gemini itself also holds the CLI's
          # credentials (oauth_creds.json), settings and project registry.
          gemini = rootsOption "gemini" // {
            example = [ "/home/alice/.gemini/tmp" ];
          };
          # The logs only: ~/.copilot itself also holds the CLI's tokens
          # (config.json), settings and MCP configuration.
          copilot = rootsOption "copilot" // {
            example = [
              "/home/alice/.copilot/session-state"
              "/home/alice/.copilot/history-session-state"
            ];
          };
          # The tasks/ folders only: globalStorage holds every extension's
          # state and secrets, the extension's folder its MCP settings.
          cline = rootsOption "cline" // {
            example = [ "/home/alice/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks" ];
          };
          # The chats only: ~/.qwen itself also holds the CLI's
          # credentials (oauth_creds.json) and settings.
          qwen = rootsOption "qwen" // {
            example = [ "/home/alice/.qwen/projects" ];
          };
          # The projects only: ~/.cursor also holds mcp.json (MCP servers,
          # often with tokens), cli-config.json and the chat stores.
          cursor = rootsOption "cursor" // {
            example = [ "/home/alice/.cursor/projects" ];
          };
          # The sessions only: ~/.factory also holds Droid's settings,
          # MCP servers and credentials.
          droid = rootsOption "droid" // {
            example = [ "/home/alice/.factory/sessions" ];
          };
          # The threads only: ~/.local/share/amp also holds secrets.json.
          amp = rootsOption "amp" // {
            example = [ "/home/alice/.local/share/amp/threads" ];
          };
          # The sessions only: ~/.kimi also holds config.toml (API keys).
          kimi = rootsOption "kimi" // {
            example = [ "/home/alice/.kimi/sessions" ];
          };
          # Project folders holding .aider.chat.history.md (no default).
          aider = rootsOption "aider" // {
            example = [ "/home/alice/src/webapp" ];
          };
          # Project folders holding .crush/crush.db (no default).
          crush = rootsOption "crush" // {
            example = [ "/home/alice/src" ];
          };
          # The folder holding sessions.db.
          goose = rootsOption "goose" // {
            example = [ "/home/alice/.local/share/goose/sessions" ];
          };
          # The folder holding opencode.db (it also holds OpenCode's
          # auth.json: kato opens only the database and its -wal/-shm).
          opencode = rootsOption "opencode" // {
            example = [ "/home/alice/.local/share/opencode" ];
          };
        };
      };
      default = { };
      example = {
        claude = [ "/home/alice/.claude/projects" ];
        codex = [ "/home/alice/.codex/sessions" ];
        gemini = [ "/home/alice/.gemini/tmp" ];
        copilot = [ "/home/alice/.copilot/session-state" ];
        cline = [ "/home/alice/.config/Code/User/globalStorage/saoudrizwan.claude-dev/tasks" ];
        qwen = [ "/home/alice/.qwen/projects" ];
        cursor = [ "/home/alice/.cursor/projects" ];
        droid = [ "/home/alice/.factory/sessions" ];
        amp = [ "/home/alice/.local/share/amp/threads" ];
        kimi = [ "/home/alice/.kimi/sessions" ];
        aider = [ "/home/alice/src/webapp" ];
        opencode = [ "/home/alice/.local/share/opencode" ];
        crush = [ "/home/alice/src" ];
        goose = [ "/home/alice/.local/share/goose/sessions" ];
      };
      description = ''
        Session-log directories per provider. A provider with no roots is
        disabled. Each root is bound read-only into the service's namespace
        (a missing one is skipped and reported by `kato doctor`).
      '';
    };

    exportRoots = mkOption {
      type = types.listOf absolutePath;
      default = [ ];
      example = [ "/home/alice/notes/agents" ];
      description = ''
        Directories kato may write exports to (`[exports] allowed_roots`).
        Each is bound read-write into the service's namespace and must exist.
      '';
    };

    settings = mkOption {
      inherit (toml) type;
      default = { };
      example = {
        sandbox.mode = "enforce";
        exports.default_dir = "/home/alice/notes/agents";
        markdown.thinking = true;
      };
      description = ''
        Further kato configuration (`config.toml`), merged over what the
        options above generate. Unknown keys are errors: kato fails closed.
      '';
    };

    extraHardening = mkOption {
      type = types.attrsOf types.unspecified;
      default = { };
      example = {
        MemoryMax = "512M";
        TasksMax = 64;
      };
      description = ''
        Systemd service settings merged over the built-in hardening (which
        matches the upstream kato.service). Use it to add restrictions, or
        to relax one for a particular machine.
      '';
    };

    instances = mkOption {
      type = types.attrsOf (types.submodule instanceModule);
      default = { };
      example = {
        alice = { };
        bob.exportRoots = [ "/srv/kato-fleet/host1/bob" ];
      };
      description = ''
        One kato per user on a shared machine: `kato@<name>.service` for each
        entry, running as that user with that user's provider roots
        read-only and export roots read-write, the same units and hardening
        as systemd/kato@.service. Independent of {option}`services.kato.enable`.
      '';
    };
  };

  config = lib.mkMerge [
    (mkIf (cfg.instances != { }) {
      environment.systemPackages = [ cfg.package ];
      systemd.services = lib.mapAttrs' instanceUnit cfg.instances;
    })
    (mkIf cfg.enable {
      environment.systemPackages = [ cfg.package ];

      systemd.services.kato = {
        description = "kato, a sandboxed observer of coding-agent sessions";
        documentation = [ "https://example.invalid/kato/README.md" ];
        wantedBy = [ "multi-user.target" ];
        after = [ "local-fs.target" ];
        restartTriggers = [ configFile ];

        environment.KATO_CONFIG = "${configFile}";

        serviceConfig =
          hardening
          // {
            Type = "exec";
            ExecStart = "${lib.getExe cfg.package} run";
            Restart = "on-failure";
            RestartSec = "5s";
            TimeoutStopSec = "30s";
            SyslogIdentifier = "kato";

            DynamicUser = cfg.user == null;
            SupplementaryGroups = cfg.supplementaryGroups;
            ConfigurationDirectory = "kato";
            ConfigurationDirectoryMode = "0755";
            StateDirectory = "kato";
            StateDirectoryMode = "0700";
            RuntimeDirectory = "kato";
            RuntimeDirectoryMode = "0700";
            LogsDirectory = "kato";
            LogsDirectoryMode = "0700";

            BindReadOnlyPaths = map (p: "-${p}") providerRoots;
            BindPaths = cfg.exportRoots;
          }
          // lib.optionalAttrs (cfg.user != null) { User = cfg.user; }
          // cfg.extraHardening;
      };
    })
  ];
}
