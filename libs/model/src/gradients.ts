// tfjs-core ships its gradient definitions unregistered; the @tensorflow/tfjs bundle
// registers all of them on import. Every module that differentiates imports this one.
import '@tensorflow/tfjs';
