'''hutch pyzygote: an IPython kernel prepared before fork, started after.

prepare() runs once in hutchd's zygote.  It imports the data stack and
builds the kernel's ZMQInteractiveShell (most of a kernel's start-up)
without sockets, threads or event loops, so that the process can fork.

launch() runs in each forked kernel.  It does what
`python3 -m ipykernel_launcher -f FILE` does, in the same order, but
reuses that shell; it returns when the kernel stops.
'''
import os
import sys

_LAUNCHER = '/usr/lib/python3/dist-packages/ipykernel_launcher.py'
_INLINE = 'module://matplotlib_inline.backend_inline'

# What a kernel imports to start and to answer its first requests.
_KERNEL_MODULES = (
    'IPython',
    'IPython.core.pylabtools',
    'IPython.extensions.storemagic',
    'ipykernel.kernelapp',
    'ipykernel.ipkernel',
    'ipykernel.zmqshell',
    'faulthandler',
    'pygments.styles.default',
    'pickleshare',
    'sqlite3',
)
# The data stack, preloaded when installed.  matplotlib_inline is left out
# on purpose: importing it while a shell exists hooks the inline backend
# into that shell, which a normal kernel does on its first plot.
_DATA_MODULES = (
    'numpy',
    'pandas',
    'pandas.io.formats.html',
    'pandas.io.formats.string',
    'matplotlib',
    'matplotlib.pyplot',
    'matplotlib.backends.backend_agg',
    'PIL.Image',
)

_app = None
_shell = None
_import_env = {}  # variables the imports set, as they would in a kernel


def _import_all():
    # ipykernel sets this before any user code runs; matplotlib reads it
    # into rcParams when it is imported.
    os.environ['MPLBACKEND'] = _INLINE
    for name in _KERNEL_MODULES:
        __import__(name)
    for name in _DATA_MODULES:
        try:
            __import__(name)
        except ImportError:
            pass
    if 'PIL.Image' in sys.modules:
        sys.modules['PIL.Image'].preinit()


def _build_shell(scratch):
    from IPython.core.profiledir import ProfileDir
    from ipykernel.compiler import XCachingCompiler
    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.zmqshell import ZMQInteractiveShell

    app = IPKernelApp.instance()
    # Building the command-line parser costs milliseconds: do it once here.
    # Each kernel then only sets its connection file.
    app.parse_command_line(['-f', 'kernel.json'])
    # No history database and no HistorySavingThread in the zygote: each
    # kernel opens its own, in its user's profile.
    app.config.HistoryManager.enabled = False
    profile = ProfileDir.create_profile_dir(os.path.join(scratch, 'profile'), app.config)
    shell = ZMQInteractiveShell.instance(
        parent=app,
        profile_dir=profile,
        user_module=None,
        user_ns=None,
        kernel=None,
        compiler_class=XCachingCompiler,
    )
    del app.config['HistoryManager']
    return app, shell


def _warm_traceback(shell):
    import linecache

    name = '<hutch-pyzygote-warm-up>'
    source = 'def f():\n    return 1 / 0\n\nf()\n'
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    try:
        exec(compile(source, name, 'exec'), {})
    except ZeroDivisionError:
        shell.InteractiveTB.structured_traceback(*sys.exc_info(), tb_offset=1)
    finally:
        del linecache.cache[name]


def _install_formatters(shell):
    '''The e2b/chart and e2b/data formatters, which a kernel started from
    its kernelspec gets from its start-up code (_RESULT_FORMATTERS, set by
    pyzygote.c: result-formatters.c).'''
    with shell.builtin_trap:
        exec(_RESULT_FORMATTERS, {})  # noqa: F821


def _warm_matplotlib(shell):
    import io

    import matplotlib.font_manager
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().plot([1, 2, 3])
    fig.savefig(io.BytesIO(), format='png', bbox_inches='tight')
    shell.display_formatter.format(fig)  # its e2b/chart
    # Cached fonts hold their files open, and a kernel inherits no files.
    matplotlib.font_manager._get_font.cache_clear()


def _warm_session():
    '''Sign, serialize and parse a message, as a kernel does with each.'''
    from jupyter_client.session import Session

    session = Session()
    msg = session.msg('execute_request', {'code': '1+1'})
    idents, parts = session.feed_identities(session.serialize(msg))
    session.deserialize(parts)


def _warm(shell):
    '''Fill the caches a kernel's first executions would fill (compiled
    regular expressions, lazily built formatters and lexers).'''
    _warm_session()
    shell.transform_cell('x = 1\nx\n')
    shell.display_formatter.format(2)
    if 'pandas' in sys.modules:
        frame = sys.modules['pandas'].DataFrame({'a': [1, 2], 'b': [0.5, 1.5]})
        shell.display_formatter.format(frame)
    _warm_traceback(shell)
    if 'matplotlib.pyplot' in sys.modules:
        _warm_matplotlib(shell)
    # The default extension of every kernel (%store); loading it again
    # after fork is then a no-op.
    shell.extension_manager.load_extension('storemagic')


def prepare(scratch):
    '''In the zygote: import everything and build the shell.  SCRATCH is an
    empty directory serving as home and matplotlib cache; it is removed.'''
    global _app, _shell
    import gc
    import shutil

    sys.dont_write_bytecode = True  # never write into the host's /usr
    before = dict(os.environ)
    try:
        _import_all()
        _app, _shell = _build_shell(scratch)
        _install_formatters(_shell)
        _warm(_shell)
        for k, v in os.environ.items():
            if before.get(k) != v and k != 'MPLBACKEND':
                _import_env[k] = v
    finally:
        sys.dont_write_bytecode = False
        shutil.rmtree(scratch, ignore_errors=True)
    gc.collect()
    # Keep the collector away from what the kernels share: a full
    # collection writes to every object and would unshare their pages.
    gc.freeze()
    sys.stdout.flush()
    sys.stderr.flush()


# In the kernel.


def _reset_signals():
    '''The kernel starts with the dispositions of a new Python process (the
    zygote and the agent changed some).'''
    import signal

    for sig in signal.valid_signals():
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            continue
        if sig in (signal.SIGPIPE, signal.SIGXFSZ):
            handler = signal.SIG_IGN
        elif sig == signal.SIGINT:
            handler = signal.default_int_handler
        else:
            handler = signal.SIG_DFL
        try:
            signal.signal(sig, handler)
        except (OSError, ValueError):
            pass  # numbers libc keeps for itself


def _set_environ(env):
    os.environ.clear()
    os.environ.update(env)
    for k, v in _import_env.items():
        os.environ.setdefault(k, v)
    # As jupyter_client's launcher does.
    os.environ.setdefault('JPY_PARENT_PID', str(os.getppid()))
    if not any(k in env for k in ('LC_ALL', 'LC_CTYPE', 'LANG')):
        # What Python's start-up does in the C locale (PEP 538).
        os.environ['LC_CTYPE'] = 'C.UTF-8'
    import locale
    import time

    try:
        locale.setlocale(locale.LC_CTYPE, '')
    except locale.Error:
        pass

    time.tzset()


def _add_user_site():
    '''site.py ran in the zygote for another home: redo its user part.'''
    import site

    site.USER_BASE = None
    site.USER_SITE = None
    site.ENABLE_USER_SITE = site.check_enableusersite()
    user_site = site.getusersitepackages()
    if not site.ENABLE_USER_SITE or not os.path.isdir(user_site):
        return
    before = list(sys.path)
    site.addsitedir(user_site)
    added = [p for p in sys.path if p not in before]
    rest = [p for p in sys.path if p in before]
    at = len(rest)
    for i, p in enumerate(rest):
        if os.path.basename(p) in ('site-packages', 'dist-packages'):
            at = i
            break
    sys.path[:] = rest[:at] + added + rest[at:]


def _reset_matplotlib():
    if 'matplotlib.pyplot' not in sys.modules:
        return
    import matplotlib
    import matplotlib.style.core

    # get_configdir() and get_cachedir() memoize the zygote's answers.
    for name, fmt in (('get_configdir', 'CONFIGDIR=%s'), ('get_cachedir', 'CACHEDIR=%s')):
        fn = getattr(matplotlib, name)
        if hasattr(fn, '__wrapped__'):
            setattr(matplotlib, name, matplotlib._logged_cached(fmt, fn.__wrapped__))
    configdir = os.environ.get('MPLCONFIGDIR') or os.path.join(
        os.environ.get('XDG_CONFIG_HOME') or os.path.expanduser('~/.config'), 'matplotlib'
    )
    stylelib = os.path.join(configdir, 'stylelib')
    matplotlib.style.core.USER_LIBRARY_PATHS[:] = [stylelib]
    if os.path.isdir(stylelib):
        matplotlib.style.core.reload_library()
    _load_user_matplotlibrc(matplotlib, configdir)
    backend = os.environ.get('MPLBACKEND')
    if backend and backend != matplotlib.rcParams._get_backend_or_none():
        matplotlib.rcParams['backend'] = backend


def _load_user_matplotlibrc(matplotlib, configdir):
    '''matplotlib read /etc/matplotlibrc in the zygote; a normal kernel
    would prefer one in the working directory or the user's config.'''
    candidates = ['matplotlibrc']
    rc_env = os.environ.get('MATPLOTLIBRC')
    if rc_env:
        candidates += [rc_env, os.path.join(rc_env, 'matplotlibrc')]
    candidates.append(os.path.join(configdir, 'matplotlibrc'))
    for fname in candidates:
        if os.path.exists(fname) and not os.path.isdir(fname):
            rc = matplotlib.rc_params_from_file(fname, use_default_template=False)
            rc.pop('backend', None)  # MPLBACKEND wins, as in a kernel
            matplotlib.rcParams.update(rc)
            matplotlib.rcParamsOrig.update(rc)
            return


def _reset_process_state():
    '''Forget what the zygote computed from its own pid, home, host,
    environment or entropy.'''
    import platform
    import sysconfig
    import tempfile
    import uuid

    tempfile.tempdir = None
    sysconfig._CONFIG_VARS = None
    platform._uname_cache = None
    uuid._node = None
    if 'numpy.random' in sys.modules:
        sys.modules['numpy.random'].seed()  # random reseeds at fork; numpy does not
    _reset_matplotlib()


def _set_argv(connection_file):
    sys.argv = [_LAUNCHER, '-f', connection_file]
    sys.orig_argv = [sys.executable, '-m', 'ipykernel_launcher', '-f', connection_file]
    # `python3 -m` puts the working directory first.
    sys.path.insert(0, os.getcwd())


def _config_files_present():
    '''Would a normal kernel load config files?  The zygote built the
    shell without any; when there are some, the kernel starts the normal
    way instead.'''
    from IPython.core.application import ENV_CONFIG_DIRS, SYSTEM_CONFIG_DIRS
    from IPython.paths import get_ipython_dir

    dirs = [os.path.join(get_ipython_dir(), 'profile_default')]
    for d in dirs + ENV_CONFIG_DIRS + SYSTEM_CONFIG_DIRS:
        for name in ('ipython_config', 'ipython_kernel_config'):
            for ext in ('.py', '.json'):
                if os.path.exists(os.path.join(d, name + ext)):
                    return True
    return False


def _set_options(app, connection_file):
    '''What parse_command_line(['-f', FILE]) does, and the options that
    ipykernel reads from the environment when it is imported.'''
    app.argv = ['-f', connection_file]
    app.cli_config.IPKernelApp.connection_file = connection_file
    app.config.IPKernelApp.connection_file = connection_file
    app.connection_file = connection_file
    app.parent_handle = int(os.environ.get('JPY_PARENT_PID') or 0)


def _init_connection_file(app):
    '''load_connection_info() evaluates the default ip even when the file
    names one, and that runs `ip addr` in a subprocess.  Skip it when the
    file names one; jupyter_client.localinterfaces still works, lazily.'''
    import json

    with open(app.connection_file) as f:
        ip = json.load(f).get('ip')
    if ip:
        app._ip_default = lambda: ip
    try:
        app.init_connection_file()
    finally:
        app.__dict__.pop('_ip_default', None)


def _write_connection_file(app, write):
    '''ipykernel rewrites its connection file, with the same content.
    jupyter_core's secure_write() truncates it, then fails unless it is
    this user's and mode 0600: leave a file that it cannot write as its
    creator wrote it, rather than empty it and die.'''
    path = app.abs_connection_file
    try:
        st = os.stat(path)
    except OSError:
        st = None
    if (
        st is None
        or os.access(os.path.dirname(path) or '.', os.W_OK)
        or (st.st_uid == os.getuid() and st.st_mode & 0o777 == 0o600)
    ):
        write()


def _adopt_shell(app, shell):
    '''Point the zygote's shell at this kernel's home and profile, and open
    the history database a normal start opens.'''
    from IPython.utils.path import get_home_dir
    from pickleshare import PickleShareDB

    shell.profile_dir = app.profile_dir
    # Set without notifying: the extension manager would then create
    # ~/.ipython/extensions, which a normal start does not.
    shell._trait_values['ipython_dir'] = app.ipython_dir
    shell.starting_dir = os.getcwd()
    shell.home_dir = get_home_dir()
    shell.logger.home_dir = shell.home_dir
    shell.db = PickleShareDB(os.path.join(app.profile_dir.location, 'db'))
    old = shell.history_manager
    shell.init_history()
    shell.configurables.remove(old)
    shell.init_user_ns()  # In, Out, _ih, _oh, _dh: the new history's
    shell.init_environment()


def _launch_fast(app, shell, connection_file):
    '''IPKernelApp.initialize() and start(), step by step, around the
    prepared shell (see ipykernel/kernelapp.py and IPython/core/
    application.py).  Config loading is skipped: there is none.'''
    app._init_asyncio_patch()
    _set_options(app, connection_file)
    app.init_crash_handler()
    app.init_profile_dir()
    app.init_config_files()
    app.init_pdb()
    app.init_blackhole()
    _init_connection_file(app)
    app.init_poller()
    app.init_sockets()
    app.init_heartbeat()
    _write_connection_file(app, app.write_connection_file)
    app.log_connection_info()
    app.init_io()
    app.init_signal()
    # The input history lives in memory: no sqlite file and no saving
    # thread per kernel (In, Out and %history work as usual for the
    # session).
    app.config.HistoryManager.hist_file = ':memory:'
    _adopt_shell(app, shell)
    shell.save_sys_module_state()  # sys.stdout is now the kernel's
    app.init_kernel()  # IPythonKernel takes the existing shell instance
    # ipykernel 6 sleeps 0.5 ms after each execution so that a client
    # reading its channels one at a time sees the output before the reply;
    # hutch's client waits for the idle status on IOPub, which comes last.
    app.kernel._execute_sleep = 0
    shell.parent = app.kernel
    shell.kernel = app.kernel
    app.init_path()
    app.init_shell()
    app.init_gui_pylab()
    app.init_extensions()
    app.init_code()
    sys.stdout.flush()
    sys.stderr.flush()
    app.start()


def _launch_slow(connection_file):
    '''A normal start, for kernels with config files (they may change how
    the shell is built); it still imports nothing again.'''
    import atexit

    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.zmqshell import ZMQInteractiveShell

    atexit.unregister(_shell.atexit_operations)
    ZMQInteractiveShell.clear_instance()
    IPKernelApp.clear_instance()
    app = IPKernelApp.instance()  # what launch_instance() does, but:
    write = app.write_connection_file
    app.write_connection_file = lambda: _write_connection_file(app, write)
    app.initialize(['-f', connection_file])
    _install_formatters(app.shell)
    app.start()


def launch(connection_file, env):
    '''In a forked kernel, once the C side has set its credentials,
    descriptors and working directory.  Serves CONNECTION_FILE with the
    environment ENV (a dict) until the kernel is shut down.'''
    _reset_signals()
    _set_environ(env)
    _add_user_site()
    _reset_process_state()
    _set_argv(connection_file)
    if _config_files_present():
        _launch_slow(connection_file)
    else:
        _launch_fast(_app, _shell, connection_file)


def _join_control_thread():
    '''Let the control thread finish answering shutdown_request before
    exit: ipykernel's atexit handler stops the IOPub thread, then joins the
    control thread, which may still be publishing its last status to it,
    and both wait forever (ipykernel 6.17; the same race as in a normal
    kernel, but a forked one loses it more often).'''
    from ipykernel.kernelapp import IPKernelApp

    app = IPKernelApp.instance() if IPKernelApp.initialized() else None
    thread = getattr(app, 'control_thread', None)
    if thread is not None and thread.is_alive():
        thread.join(5)


def run(connection_file, env):
    '''launch(), returning the exit status python3 would have.'''
    try:
        launch(connection_file, env)
        _join_control_thread()
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            return e.code or 0
        print(e.code, file=sys.stderr)
        return 1
    except BaseException:
        import traceback

        traceback.print_exc()
        return 1
    return 0
